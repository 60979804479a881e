"""The course harness: everything that knows about this repository and its notebooks.

    course.env         the VIT_PROFILE switch (full | smoke), `pick`, the device banner,
                       the data folder ($VIT_DATA, else data/), figures/, the offline CIFAR-10 copy
    course.pretrained  pretrained weights, or None with the reason printed (smoke, offline)
    course.bench       `python -m course.bench`: vit_core's training speed against timm and torchvision
    course.recipe_book every named training recipe, defined once
    course.recipes     runs, records and exports them: `python -m course.recipes list | run | export`

It imports vit_core; vit_core never imports it. Copy vit_core/ alone into your own work.
"""
