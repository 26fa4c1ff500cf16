"""The numbers evaluation (issue 26): handwritten numbers of 2-6 digits, rendered as canvases, scans and
photos, read by `digit_frontend.numbers` and a model of the zoo. See `bench/numbers/README.md`."""
