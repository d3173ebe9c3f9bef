#!/usr/bin/env bash
# The browser test needs Debian's Chromium; test tools must never download a browser of their own.
# Installs it when missing and we may (root with apt); otherwise the browser test skips with a
# reason, or fails under CI (CI set to a truthy value), where it must run.
set -u
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser test..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) >/dev/null 2>&1 \
    || echo "could not install chromium: the browser test will be skipped (and fail under CI)"
fi
exit 0
