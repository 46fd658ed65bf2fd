#!/usr/bin/env bash
# Install what the admin-page browser test needs: Debian's chromium (Playwright drives it
# through executable_path; never `playwright install`). Idempotent; needs root for apt-get.
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
/usr/bin/chromium --version
