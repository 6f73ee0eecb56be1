"""How fast the training readers feed a GPU (``benchmarks/loader_speed.py``).

``data`` (an ImageNet-like JPEG set written both as class folders and as img2dataset shards), ``readers`` (our readers
in the trainers' DataLoader beside torchvision's ImageFolder and the webdataset library, and the timing), ``need``
(the images per second a GPU and a data worker must deliver at the step time docs/scaling.md plans).
"""
