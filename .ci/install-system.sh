#!/usr/bin/env bash
# Installs the system packages edgerun's tests need on a fresh Debian machine:
# a Vulkan driver Dawn accepts (lavapipe from Mesa >= 25) and the Vulkan loader.
set -euo pipefail
need_apt_update=1
apt_update() { if [ "$need_apt_update" = 1 ]; then apt-get update -qq; need_apt_update=0; fi; }

. /etc/os-release
if [ "${VERSION_CODENAME:-}" = "bookworm" ]; then
  # Debian 12's Mesa 22 lavapipe is refused by Dawn; bookworm-backports carries Mesa 25.
  if [ ! -f /etc/apt/sources.list.d/bookworm-backports.sources ]; then
    cat > /etc/apt/sources.list.d/bookworm-backports.sources <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    need_apt_update=1
  fi
  mesa_version=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || echo none)
  case "$mesa_version" in
    2[5-9].*|[3-9][0-9].*) ;;
    *) apt_update; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 ;;
  esac
else
  if ! dpkg -s mesa-vulkan-drivers >/dev/null 2>&1; then
    apt_update; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1
  fi
fi

# Headless Chromium drives the dashboard tests (playwright-core, executablePath /usr/bin/chromium).
if ! command -v chromium >/dev/null 2>&1; then
  apt_update; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi

# Fleet tests run their own Mosquitto on a free port; the monitor's PostgreSQL store is tested against a real
# PostgreSQL server the tests start in a temp folder. Accuracy eval sets are rendered with real fonts
# (Latin: DejaVu, Liberation; Chinese: WenQuanYi Micro Hei).
missing=()
for pkg in mosquitto postgresql fonts-dejavu-core fonts-liberation2 fonts-wqy-microhei; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt_update; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
