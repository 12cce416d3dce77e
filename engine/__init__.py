"""WeGen inference engine: models, sampling, decoding, runtimes and the Engine API. No Qt here."""
