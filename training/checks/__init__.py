"""Checks and experiments that tell why a model falls short, one question each (each runs as
``python -m training.checks.<name> --help``):

* vision.py: which scene attributes the vision tower's features carry (stage 0);
* shape_learning.py: how fast a tower learns the shapes, by tower and readout (stage 0);
* decoder.py: can the de-tokenizer redraw a held-out scene from true features (stage 1);
* vae_fit.py: can the VAE keep what the judge reads, even on images it is fitted to (stage 1);
* generation.py: do the LLM's generated features carry what the caption asks for (stage 2);
* phrasing.py: does the model draw what people type, with the task left on automatic;
* compare_reports.py: is one wegen-eval report better than another, sample by sample.
"""
