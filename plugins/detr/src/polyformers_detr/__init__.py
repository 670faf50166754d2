"""polyformers-detr: DETR object detection / segmentation models and image processor for polyformers.

Import classes from ``polyformers`` (``from polyformers import DetrForObjectDetection``); this
package imports nothing heavy by itself.
"""

__version__ = "0.1.0"
