"""tagger: music auto-tagging with Keras 3 and TensorFlow.

Importing the package is light (no TensorFlow): the audio and dataset code
runs in worker processes that never need it.
"""

__version__ = "0.1.0"
