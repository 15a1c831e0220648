"""fastdup on a folder, run with the Python of fastdup's own venv; writes its similarity edges as JSON.

fastdup (Visual Layer) embeds every image with its bundled ONNX model and links each image to its
``nearest_neighbors_k`` nearest neighbours above ``threshold`` (cosine). ``bench/neardup.py`` turns the
edges into groups at several similarity thresholds (fastdup's own connected components use 0.96).

    SENTRY_OPT_OUT=1 /work/fastdup-venv/bin/python bench/neardup_fastdup.py FOLDER WORK OUT.json [THREADS]
"""

import json
import os
import sys


def main() -> None:
    """Run fastdup and write ``{"edges": [[name_a, name_b, similarity], ...]}``."""
    folder, work, out = sys.argv[1:4]
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    os.environ.setdefault("SENTRY_OPT_OUT", "1")
    import fastdup

    fd = fastdup.create(work_dir=work, input_dir=folder)
    fd.run(threshold=0.8, nearest_neighbors_k=4, num_threads=threads, overwrite=True, verbose=False)
    similarity = fd.similarity()
    edges = [
        [os.path.basename(a), os.path.basename(b), float(s)]
        for a, b, s in zip(
            similarity["filename_from"], similarity["filename_to"], similarity["distance"], strict=True
        )
    ]
    with open(out, "w") as handle:
        json.dump({"edges": edges}, handle)


if __name__ == "__main__":
    main()
