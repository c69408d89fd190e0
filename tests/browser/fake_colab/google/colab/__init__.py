"""A stand-in for Colab's ``google.colab`` package, for driving the notebooks' Colab path in a real
browser on a machine that is not Colab (tests/test_browser.py puts this folder on the kernel's
PYTHONPATH). ``google`` stays a namespace package, so other ``google.*`` packages still import."""
