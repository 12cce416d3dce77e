"""The last few full-size images the window has shown, decoded, by image id.

Showing an edit's result beside the image it started from needs that earlier image at full size.
It is nearly always one just made or just shown, so keeping the last few in memory spares the GUI
thread a PNG decode (about 15 ms at 1024 px) each time. Images on disk never change under an id
(a retried reply's images get new ids), so an entry never goes stale.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from PySide6.QtGui import QImage


class RecentImages:
    def __init__(self, capacity: int = 8) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._images: OrderedDict[int, QImage] = OrderedDict()

    def __contains__(self, image_id: int) -> bool:
        return image_id in self._images

    def put(self, image_id: int, image: QImage) -> None:
        if image.isNull():
            return
        self._images[image_id] = image
        self._images.move_to_end(image_id)
        while len(self._images) > self.capacity:
            self._images.popitem(last=False)

    def get(self, image_id: int, path: Path) -> QImage:
        """The image, from memory or else read from ``path`` (a null QImage if unreadable)."""
        image = self._images.get(image_id)
        if image is not None:
            self._images.move_to_end(image_id)
            return image
        image = QImage(str(path))
        self.put(image_id, image)
        return image
