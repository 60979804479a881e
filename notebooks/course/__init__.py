"""The course harness: everything that knows about this repository and its notebooks
(profiles, folders, the offline CIFAR-10 copy, named recipes, benchmarks). It imports
vit_core; vit_core never imports it. Copy vit_core/ alone into your own work."""
