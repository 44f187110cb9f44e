"""Writes the demo NFT collection that k8s/examples/nft-collection.yaml pins.

Usage: python3 make-nft-collection.py OUT_DIR IMAGES_CID

Step 1 writes OUT_DIR/images/ (10 small PNG-headed files) when IMAGES_CID is "-"; step 2, given
the CID `distribute add -r --cid-version 1 OUT_DIR/images` printed, writes OUT_DIR/metadata/
(one JSON per token pointing at ipfs://IMAGES_CID/<n>.png) and OUT_DIR/contract.json. Every byte
is derived from the token number, so the CIDs are the same on every machine.
"""

import hashlib
import json
import os
import sys

TOKENS = 10


def write_images(out):
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    for i in range(1, TOKENS + 1):
        body = hashlib.sha256(f"token {i}".encode()).digest() * 64
        with open(os.path.join(out, "images", f"{i}.png"), "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n" + body)


def write_metadata(out, images_cid):
    os.makedirs(os.path.join(out, "metadata"), exist_ok=True)
    for i in range(1, TOKENS + 1):
        token = {
            "name": f"Lighthouse #{i}",
            "description": "Demo collection pinned by the Distribute operator",
            "image": f"ipfs://{images_cid}/{i}.png",
        }
        with open(os.path.join(out, "metadata", f"{i}.json"), "w") as f:
            json.dump(token, f, indent=2)
    with open(os.path.join(out, "contract.json"), "w") as f:
        json.dump({"name": "Lighthouses", "description": "Demo NFT collection"}, f, indent=2)


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 64
    out, images_cid = argv[1], argv[2]
    if images_cid == "-":
        write_images(out)
    else:
        write_metadata(out, images_cid)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
