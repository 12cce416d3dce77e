"""The image canvas: fit, zoom, pan, 1:1 and a before/after comparison with a draggable divider.

A plain QWidget that paints one image (or a live denoising preview) with a view transform: either
"fit" (the image scaled to the widget, recomputed on resize) or an explicit scale and offset.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

MIN_SCALE = 0.05
MAX_SCALE = 32.0
ZOOM_STEP = 1.25
MARGIN = 16  # pixels around a fitted image
HANDLE_GRAB = 8  # how close to the divider a press grabs it


class ImageCanvas(QWidget):
    zoom_changed = Signal(float)  # the current scale (1.0 = one image pixel per screen pixel)
    compare_available = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("canvas")
        self.setMinimumSize(240, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._image: QImage | None = None
        self._before: QImage | None = None
        self._preview = False
        self._compare = False
        self._split = 0.5  # divider position across the image, 0..1
        self._fit = True
        self._scale = 1.0
        self._offset = QPointF()
        self._drag: str | None = None  # "pan" | "split"
        self._drag_from = QPointF()
        self._caption = ""
        self._notice = ""  # what just happened (e.g. a cancelled reply), until the next image
        self._empty_text = self.tr(
            "Your images appear here.\n\nDescribe a picture below and press Ctrl+Enter,\n"
            "or drop a photo on the window to restore or restyle it."
        )

    # --- content --------------------------------------------------------------------------
    def set_image(
        self, image: QImage | None, before: QImage | None = None, caption: str = ""
    ) -> None:
        """Show ``image``; ``before`` enables the comparison (kept on if it was on)."""
        same_size = (
            self._image is not None
            and image is not None
            and image.size() == self._image.size()
            and not self._preview
        )
        self._image, self._before, self._preview, self._caption = image, before, False, caption
        self._notice = ""
        if not same_size:
            self._fit = True
        if before is None:
            self._compare = False
        self.compare_available.emit(before is not None)
        self._changed()

    def show_preview(self, image: QImage, caption: str = "") -> None:
        """Show a (small) denoising preview, scaled like the final image will be."""
        self._image, self._before, self._preview = image, None, True
        self._caption, self._compare, self._fit = caption, False, True
        self._notice = ""
        self.compare_available.emit(False)
        self._changed()

    def clear(self) -> None:
        self.set_image(None)

    def image(self) -> QImage | None:
        return self._image

    def is_preview(self) -> bool:
        return self._preview

    def set_notice(self, text: str) -> None:
        """Say something above the image (or the empty canvas) until the next image shows."""
        self._notice = text
        self.update()

    def notice(self) -> str:
        return self._notice

    def has_before(self) -> bool:
        return self._before is not None

    # --- view -----------------------------------------------------------------------------
    @property
    def is_fit(self) -> bool:
        return self._fit

    @property
    def compare(self) -> bool:
        return self._compare

    @property
    def split(self) -> float:
        return self._split

    def set_compare(self, on: bool) -> None:
        self._compare = bool(on) and self._before is not None
        self.update()

    def set_split(self, fraction: float) -> None:
        self._split = min(1.0, max(0.0, fraction))
        self.update()

    def scale(self) -> float:
        if self._image is None or self._image.width() == 0:
            return 1.0
        return self.image_rect().width() / self._image.width()

    def fit(self) -> None:
        self._fit = True
        self._changed()

    def actual_size(self) -> None:
        """1:1, centred."""
        if self._image is None:
            return
        self._fit = False
        self._scale = 1.0
        self._offset = QPointF(
            (self.width() - self._image.width()) / 2, (self.height() - self._image.height()) / 2
        )
        self._changed()

    def zoom_in(self) -> None:
        self.zoom_to(self.scale() * ZOOM_STEP)

    def zoom_out(self) -> None:
        self.zoom_to(self.scale() / ZOOM_STEP)

    def zoom_to(self, scale: float, anchor: QPointF | None = None) -> None:
        """Scale the view, keeping the image point under ``anchor`` (default: centre) in place."""
        if self._image is None:
            return
        anchor = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        rect = self.image_rect()
        old = rect.width() / self._image.width()
        scale = min(MAX_SCALE, max(MIN_SCALE, scale))
        point = (anchor - rect.topLeft()) / old
        self._fit = False
        self._scale = scale
        self._offset = anchor - point * scale
        self._changed()

    def pan(self, dx: float, dy: float) -> None:
        if self._image is None:
            return
        if self._fit:
            self._unfit()
        self._offset += QPointF(dx, dy)
        self.update()

    def image_rect(self) -> QRectF:
        """Where the image is drawn, in widget coordinates."""
        if self._image is None:
            return QRectF()
        iw, ih = self._image.width(), self._image.height()
        if self._fit:
            room_w = max(1, self.width() - 2 * MARGIN)
            room_h = max(1, self.height() - 2 * MARGIN - 20)
            s = min(room_w / iw, room_h / ih)
            return QRectF(
                (self.width() - iw * s) / 2, (self.height() - 20 - ih * s) / 2, iw * s, ih * s
            )
        return QRectF(self._offset.x(), self._offset.y(), iw * self._scale, ih * self._scale)

    def _unfit(self) -> None:
        rect = self.image_rect()
        assert self._image is not None
        self._scale = rect.width() / self._image.width()
        self._offset = rect.topLeft()
        self._fit = False

    def _changed(self) -> None:
        self.zoom_changed.emit(self.scale())
        self.update()

    # --- painting -------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Base))
        if self._image is None:
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self._empty_text)
            self._paint_notice(painter)
            painter.end()
            return
        rect = self.image_rect()
        # smooth when fitted or shrunk; exact pixels when the person zooms in to inspect
        painter.setRenderHint(
            QPainter.RenderHint.SmoothPixmapTransform,
            self._fit or self._preview or self.scale() < 2,
        )
        painter.fillRect(rect.adjusted(2, 2, 2, 2), QColor(0, 0, 0, 40))
        if self._compare and self._before is not None:
            split_x = rect.left() + rect.width() * self._split
            painter.save()
            painter.setClipRect(
                QRectF(rect.left(), rect.top(), split_x - rect.left(), rect.height())
            )
            painter.drawImage(rect, self._before)
            painter.restore()
            painter.save()
            painter.setClipRect(QRectF(split_x, rect.top(), rect.right() - split_x, rect.height()))
            painter.drawImage(rect, self._image)
            painter.restore()
            painter.setPen(QPen(QColor("white"), 2))
            painter.drawLine(QPointF(split_x, rect.top()), QPointF(split_x, rect.bottom()))
            painter.setBrush(QColor("white"))
            painter.drawEllipse(QPointF(split_x, rect.center().y()), 6, 6)
            self._label(painter, QPointF(rect.left() + 6, rect.top() + 6), self.tr("Before"))
            self._label(
                painter, QPointF(rect.right() - 6, rect.top() + 6), self.tr("After"), right=True
            )
        else:
            painter.drawImage(rect, self._image)
        caption = self._caption or ""
        if self._preview:
            caption = caption or self.tr("Preview")
        if caption:
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(
                QRectF(0, self.height() - 24, self.width(), 20),
                Qt.AlignmentFlag.AlignCenter,
                caption,
            )
        self._paint_notice(painter)
        painter.end()

    def _paint_notice(self, painter: QPainter) -> None:
        if self._notice:
            self._label(painter, QPointF(self.width() / 2, 10), self._notice, centre=True)

    def _label(
        self, painter: QPainter, at: QPointF, text: str, right: bool = False, centre: bool = False
    ) -> None:
        metrics = painter.fontMetrics()
        width = metrics.horizontalAdvance(text) + 12
        left = at.x() - width if right else at.x() - width / 2 if centre else at.x()
        box = QRectF(left, at.y(), width, metrics.height() + 4)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 150))
        painter.drawRoundedRect(box, 4, 4)
        painter.setPen(QColor("white"))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    # --- mouse ----------------------------------------------------------------------------
    def _near_split(self, pos: QPointF) -> bool:
        if not (self._compare and self._before is not None):
            return False
        rect = self.image_rect()
        split_x = rect.left() + rect.width() * self._split
        return abs(pos.x() - split_x) <= HANDLE_GRAB and rect.top() <= pos.y() <= rect.bottom()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self._image is None:
            return super().mousePressEvent(event)
        pos = event.position()
        self._drag = "split" if self._near_split(pos) else "pan"
        self._drag_from = pos
        if self._drag == "pan":
            self.setCursor(Qt.CursorShape.ClosedHandCursor)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._drag == "split":
            rect = self.image_rect()
            self.set_split((pos.x() - rect.left()) / max(1.0, rect.width()))
        elif self._drag == "pan":
            delta = pos - self._drag_from
            self._drag_from = pos
            self.pan(delta.x(), delta.y())
        elif self._near_split(pos):
            self.setCursor(Qt.CursorShape.SplitHCursor)
        else:
            self.setCursor(
                Qt.CursorShape.OpenHandCursor
                if self._image is not None
                else Qt.CursorShape.ArrowCursor
            )

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._drag = None
        self.setCursor(
            Qt.CursorShape.OpenHandCursor if self._image is not None else Qt.CursorShape.ArrowCursor
        )

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self._fit:
            self.actual_size()
        else:
            self.fit()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120
        if steps and self._image is not None:
            self.zoom_to(self.scale() * ZOOM_STEP**steps, event.position())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fit:
            self.zoom_changed.emit(self.scale())
