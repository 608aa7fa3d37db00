"""Methods: what a sweep varies, each registered by a short name (registry.py).

The lowest room: it imports nothing else of gan_tasks. Torch-free metadata (catalog.py: losses,
optimizers, models; trick_settings.py: the Tricks setting; params.py: parameter schemas) is what
validation reads; the torch code it names by Ref (losses.py, optimizers.py, models.py, tricks.py,
unroll.py, cyclegan.py: CycleGAN's networks, losses, pool and step) is imported only when a trial trains.
"""
