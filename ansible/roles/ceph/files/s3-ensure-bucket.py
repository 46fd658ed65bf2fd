#!/usr/bin/env python3
"""Create an S3 bucket on the local RADOS gateway unless it exists (Python standard library).

    S3_ENDPOINT=http://ADDRESS:7480 S3_ACCESS_KEY=... S3_SECRET_KEY=... s3-ensure-bucket.py NAME

An https endpoint's certificate is checked against S3_CA_FILE (PEM) when set, else the
system's CAs.

Prints `exists` or `created`. Keys come from the environment, never from the command line.
Requests are signed with AWS signature v2 (what radosgw accepts without a region).
"""

import base64
import email.utils
import hashlib
import hmac
import os
import ssl
import sys
import urllib.error
import urllib.request


def request(method: str, bucket: str) -> int:
    endpoint = os.environ["S3_ENDPOINT"].rstrip("/")
    date = email.utils.formatdate(usegmt=True)
    to_sign = f"{method}\n\n\n{date}\n/{bucket}"
    signature = base64.b64encode(
        hmac.new(os.environ["S3_SECRET_KEY"].encode(), to_sign.encode(), hashlib.sha1).digest()
    ).decode()
    req = urllib.request.Request(
        f"{endpoint}/{bucket}",
        method=method,
        headers={"Date": date, "Authorization": f"AWS {os.environ['S3_ACCESS_KEY']}:{signature}"},
    )
    try:
        context = ssl.create_default_context(cafile=os.environ.get("S3_CA_FILE") or None)
        with urllib.request.urlopen(req, timeout=60, context=context) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def main() -> int:
    bucket = sys.argv[1]
    status = request("HEAD", bucket)
    if status == 200:
        print("exists")
        return 0
    if status != 404:
        print(f"HEAD /{bucket} answered {status}", file=sys.stderr)
        return 1
    status = request("PUT", bucket)
    if status != 200:
        print(f"PUT /{bucket} answered {status}", file=sys.stderr)
        return 1
    print("created")
    return 0


if __name__ == "__main__":
    sys.exit(main())
