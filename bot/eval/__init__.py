"""``python -m bot eval``: does the engine find the right scenes, and does a model stay in character?

Two parts, as the field measures character fidelity: retrieval against held-out questions that name
the scene they should find (recall@k and MRR, dense only, lexical only and hybrid), and role-play
quality, where a judge model scores each answer against a fixed rubric. The report goes to
``<data_dir>/eval/<time>/``.
"""
