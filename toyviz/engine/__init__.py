"""The training engine: config tree and presets, 2D mixtures, nets with their features record, losses, the one
regularizer registry, the trainer and its run folders. Imports nothing else of toyviz."""
