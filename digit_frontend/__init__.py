"""The image front end: from an uploaded file to the digit each model reads, shared by the service,
the trainers and the evaluation (none of which it imports).

- `decode`: header-first checks (`structure`), limits, reduced-scale decoding, EXIF orientation;
- `classical`: hand-written rules that find the ink (polarity, illumination, lines, components);
- `framing`: a stroke mask framed as MNIST (28x28) or the UCI set (8x8 blocks) framed its digits;
- `pipeline`: `prepare_image`, the whole path, and `PreparedImage`, what it found.
"""
