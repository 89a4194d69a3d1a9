"""What the real server reads from an upload and the preview it makes of an image
(corteza-server 2020.12.0 messaging/service/attachment.go: create, extractMimetype, processImage).

The type of an image comes from its bytes, as http.DetectContentType finds it; any other upload
keeps the type its client declared (we do not port Go's whole sniffing table), except that an
image type its bytes do not bear out becomes application/octet-stream. An image gets a preview
that fits 320x180 (Lanczos): a GIF of its first frame for a GIF, a JPEG (quality 85) for the rest."""

import io
import warnings

from PIL import Image, ImageOps

from mockserver.errors import ApiError
from mockserver.vendors.corteza.exceptions import corteza_error

MAX_WIDTH, MAX_HEIGHT = 320, 180  # attachmentPreviewMaxWidth, attachmentPreviewMaxHeight
MAX_PIXELS = 40_000_000  # ours: a bigger image is refused before it is decoded (a 4 MiB PNG can hold gigapixels)
# Ours: a JPEG of more scans is refused before it is decoded. Each scan is a pass over the whole
# image: 59,037 tiny scans fit in 4 MiB and cost minutes; real progressive JPEGs have about 10.
MAX_SCANS = 100
SOS = b"\xff\xda"  # a scan's start marker: entropy-coded data never holds it, so its count bounds the scans

# net/http/sniff.go's image signatures, in its order (RIFF....WEBPVP is checked apart).
SIGNATURES = [(b"\x00\x00\x01\x00", "image/x-icon"), (b"\x00\x00\x02\x00", "image/x-icon"), (b"BM", "image/bmp"),
              (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"), (b"\x89PNG\r\n\x1a\n", "image/png"),
              (b"\xff\xd8\xff", "image/jpeg")]

# disintegration/imaging v1.6.0 FormatFromExtension; anything else is an error for an image.
FORMATS = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "gif": "GIF", "tif": "TIFF", "tiff": "TIFF", "bmp": "BMP"}
DECODABLE = {"JPEG", "PNG", "GIF", "TIFF", "BMP"}  # what Go's image.Decode reads in the real server (no ICO, no WebP)

# What Pillow warns of (a damaged file's tags; a size over its own bomb limit, which MAX_PIXELS is
# under) is the client's business, not our log's. Set once here: previews are made in threads,
# where warnings.catch_warnings is not safe.
warnings.filterwarnings("ignore", module="PIL")


def mimetype(data: bytes, declared: str) -> str:
    for signature, kind in SIGNATURES:
        if data.startswith(signature):
            return kind
    if data[:4] == b"RIFF" and data[8:14] == b"WEBPVP":
        return "image/webp"
    return "application/octet-stream" if declared.lower().startswith("image/") else declared


def extension(name: str) -> str:
    """path.Ext of the name with leading and trailing dots trimmed, itself without its dot."""
    trimmed = name.strip(".")
    base = trimmed.rpartition("/")[2]
    return base.rpartition(".")[2] if "." in base else ""


def preview(data: bytes, ext: str) -> tuple[dict, dict]:
    """(the original's image meta, the preview: its bytes and meta) of an image upload, or the
    real server's refusal "could not process image"."""
    kind = FORMATS.get(ext.lower())
    if kind is None:
        raise corteza_error("could not process image")
    try:
        return _made(data, kind)
    except ApiError:
        raise
    except Exception:  # a decoder meeting hostile bytes may raise anything: as Go's decode error
        raise corteza_error("could not process image") from None


def _made(data: bytes, kind: str) -> tuple[dict, dict]:
    opened = Image.open(io.BytesIO(data))
    if opened.format not in DECODABLE or (kind == "GIF" and opened.format != "GIF") \
            or opened.width * opened.height > MAX_PIXELS \
            or (opened.format == "JPEG" and data.count(SOS) > MAX_SCANS):
        raise corteza_error("could not process image")
    # gif.DecodeAll: looped (a NETSCAPE loop count above 0) or more than one frame
    animated = kind == "GIF" and (opened.info.get("loop", -1) > 0 or getattr(opened, "is_animated", False))
    opened.seek(0)
    opened.load()
    # exiffix.Decode turns by the EXIF orientation, for .jpg names only
    image: Image.Image = ImageOps.exif_transpose(opened) if kind == "JPEG" else opened
    original = {"width": image.width, "height": image.height, "animated": animated}
    image = image.convert("RGBA" if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info else "RGB")
    width, height = image.size
    if width > MAX_WIDTH and width > height:
        image = image.resize((MAX_WIDTH, max(1, int(MAX_WIDTH * height / width + 0.5))), Image.Resampling.LANCZOS)
    elif height > MAX_HEIGHT:
        image = image.resize((max(1, int(MAX_HEIGHT * width / height + 0.5)), MAX_HEIGHT), Image.Resampling.LANCZOS)
    encoded = io.BytesIO()
    if kind == "GIF":
        image.save(encoded, "GIF")
        shown = {"ext": "gif", "mimetype": "image/gif"}
    else:
        image.convert("RGB").save(encoded, "JPEG", quality=85)
        shown = {"ext": "jpg", "mimetype": "image/jpeg"}
    return original, shown | {"data": encoded.getvalue(), "width": image.width, "height": image.height}
