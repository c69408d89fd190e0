"""The photo sources of embedded model v2 (issue 17): where each one is, what it holds, its terms.

Every source is a public git repository listed in the project's EXTRA_SOURCES.md, extracted with
``extract_git_tree.py`` into ``RAW/<name>/`` (see README.md in this folder for the commands).
``scan_cap``: how many of its photos are looked at (a seeded sample; None = all): the 2-core machine
that curates them cannot afford all 278,000, and the GPU calls carry far fewer anyway.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    name: str
    repo: str
    rev: str
    paths: tuple[str, ...]
    content: str
    terms: str
    scan_cap: int | None = None
    product_shots: bool = False  # filter white-background product shots and drawings


SOURCES = (
    Source("miniplaces", "rathull/CTFs", "f35c219885f163ca00a045236dd44be489598837", ("data/images",),
           "MIT MiniPlaces (Places2 subset, 100 scene classes), 128x128", "Places: research and education use",
           scan_cap=24000),
    Source("petimages", "karemsaeed21/cat_vs_dog_classification_CNN", "HEAD", ("PetImages/Cat", "PetImages/Dog"),
           "cats and dogs (Microsoft PetImages), 180x180", "none stated (Microsoft PetImages)", scan_cap=10000),
    Source("tinyimagenet", "rangeetpan/IMagenet", "HEAD", ("tiny-imagenet-200",),
           "Tiny ImageNet, 200 object classes, 64x64", "ImageNet terms: research use", scan_cap=8000),
    Source("caltech101", "MachineLearning2020/Homework2-Caltech101", "HEAD", ("101_ObjectCategories",),
           "Caltech-101 objects", "Caltech-101: research", product_shots=True),
    Source("catsdogs_breeds", "chanakya2734/Image-classification-using-CNN", "HEAD", ("dataset",),
           "cats and dogs, breeds", "none stated"),
    Source("clothing", "alexeygrigorev/clothing-dataset", "HEAD", ("images",),
           "clothes photographed on floors and beds", "CC0", scan_cap=2500),
    Source("flowers", "martinwestin/flower_classification", "HEAD", ("flowers",), "flowers, 128x128", "none stated"),
    Source("pacs", "MachineLearning2020/Homework3-PACS", "HEAD", ("PACS/photo",), "PACS photo domain (objects)",
           "PACS: research"),
    Source("imagen", "ajschumacher/imagen", "HEAD", ("imagen",), "ImageNet DET photos",
           "ImageNet terms: research use"),
    Source("bsds500", "BIDS/BSDS500", "HEAD", ("BSDS500/data/images",), "Berkeley segmentation natural scenes",
           "Berkeley research set"),
    Source("denoise", "majedelhelou/denoising_datasets", "HEAD", ("CSun_Hays80", "CUrban100"),
           "city and landscape scenes (Sun-Hays 80, Urban100), about 1024 px", "no ownership claimed"),
)

BY_NAME = {s.name: s for s in SOURCES}
