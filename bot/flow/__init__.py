"""The path of one message, as stages the router composes.

::

    receive (locks.py: one chat at a time, in order; the claim opens the gather)
      → classify (classify.py: command, a command's next step, a call to characters, room talk)
      → gather (gather.py: the claim, the chat's state, the message stored and each answering
        character's context, in one unit of work)
      → govern (bot/governor.py: rate limits and budgets)
      → respond (answer.py over bot/engine: retrieve, prompt, model, reply check, screenshot)
      → record (record.py: the characters' lines, the replies and the usage, in one unit of work)
      → deliver (the platform's send queue, bot/sending.py)

Jobs use the same stages: the daily greeting (greet.py) gathers, answers and records like a reply.
"""
