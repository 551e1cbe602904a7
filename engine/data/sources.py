"""The names of the data sources image recipes accept, one vocabulary for all of them
(torch-free: the configs use it; engine/data/images.py loads them)."""

IMAGE_SOURCES = ("digits", "faces", "mnist", "fashion-mnist", "folder")
DIGIT_SOURCES = ("digits", "mnist")  # sources whose images the digit classifier can judge
SOURCE_HELP = ("digits (embedded), faces (embedded cartoon faces), mnist or fashion-mnist (your local copy, "
               "torchvision's layout), folder (your images)")
