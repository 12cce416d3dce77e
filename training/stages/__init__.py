"""The training stages, in the order `training.reproduce` runs them (training/config.py names them):

* vision.py: stage 0, the vision tower (tiny only; the official model uses a frozen EVA-CLIP);
* decoder.py: stage 1, the de-tokenizer: the VAE (1a), then the UNet that draws from 64
  features (1b);
* mllm.py: stages 2 and 3, the LLM and both projectors on chat samples of every task;
* pipeline.py: each stage as a named `Stage` (its objective, batches and trainable modules).

Every stage trains in the one loop of training/loop.py.
"""
