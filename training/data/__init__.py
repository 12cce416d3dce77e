"""Training data: the procedural shapes world, its chat tasks and its judge.

world.py (vocabulary, scenes) -> splits.py (held-out combinations, ``sample_scene``) ->
render.py / conditions.py / degrade.py (pixels) -> captions.py / edits.py (text) ->
phrasings.py (requests and questions as people type them, train and held-out forms) ->
samples.py / tasks.py (chat samples in engine.template's format) -> corpus.py (tokenizer text);
judge.py / scoring.py read images back and score them.
"""
