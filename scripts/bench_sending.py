"""How the paced send queue spreads a burst of replies: ``--replies`` replies to different groups at
once, through one account's queue with the ``[sending]`` defaults (or ``--gap``/``--burst``), posted
to a platform that answers at once. Prints when they went out::

    PYTHONPATH=. .venv/bin/python scripts/bench_sending.py --replies 50
"""

from __future__ import annotations

import argparse
import asyncio
import itertools

from bot.config import SendingConfig
from bot.messages import ChatKey, Reply
from bot.sending import SendQueue


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--replies", type=int, default=50)
    parser.add_argument("--gap", type=float, default=SendingConfig().min_gap_s)
    parser.add_argument("--burst", type=int, default=SendingConfig().burst)
    args = parser.parse_args()
    loop = asyncio.get_running_loop()
    posted: list[float] = []

    async def post(_key: ChatKey, _reply: Reply) -> None:
        posted.append(loop.time())

    queue = SendQueue(post, SendingConfig(min_gap_s=args.gap, burst=args.burst))
    started = loop.time()
    await asyncio.gather(
        *(queue.put(ChatKey("onebot", str(group)), Reply(f"reply {group}")) for group in range(args.replies))
    )
    await queue.aclose()
    gaps = [later - earlier for earlier, later in itertools.pairwise(posted)]
    busiest = max(sum(1 for at in posted if start <= at < start + 1.0) for start in posted)
    print(
        f"{len(posted)}/{args.replies} replies posted in {posted[-1] - started:.1f} s "
        f"(gap {args.gap:g} s, burst {args.burst}); "
        f"first {args.burst} within {posted[args.burst - 1] - started:.3f} s, "
        f"then gaps {min(gaps[args.burst :]):.3f}–{max(gaps[args.burst :]):.3f} s; "
        f"at most {busiest} posts in any second"
    )


if __name__ == "__main__":
    asyncio.run(main())
