#!/usr/bin/env bash
# A local Debian bookworm base image for docker/Dockerfile where no image registry is reachable:
# debootstrap (minbase) from the Debian mirror apt already uses, then `docker import`.
#
#   scripts/docker_base.sh [--name courseplatform-base:bookworm] [--mirror URL] [--ca-dir DIR]
#                          [--python PREFIX] [--rebuild]
#
# --ca-dir DIR: the *.crt files of DIR (e.g. /usr/local/share/ca-certificates: a TLS-inspecting
#   proxy's CA) are trusted inside the base (update-ca-certificates), so HTTPS from builds and
#   containers made from it passes certificate checks. Default: EXTRA_CA_DIR, else none.
# --python PREFIX: a CPython 3.11 installation of this (Debian bookworm) host, e.g. a pyenv build, copied
#   into the base's /usr/local (interpreter, libpython and the standard library; not its
#   site-packages). Debian bookworm's own python3 is 3.11.2, older than some pins of
#   requirements.txt (soupsieve needs >= 3.11.5); without --python the image uses it anyway.
# Idempotent: an existing image of that name is kept unless --rebuild. Then:
#   DOCKER_BUILDKIT=1 docker build -f docker/Dockerfile --build-arg BASE_IMAGE=courseplatform-base:bookworm .
set -euo pipefail

name=courseplatform-base:bookworm
mirror=""
ca_dir="${EXTRA_CA_DIR:-}"
rebuild=0
python_prefix=""
while (($#)); do
  case "$1" in
    --name) name="$2"; shift 2 ;;
    --mirror) mirror="$2"; shift 2 ;;
    --ca-dir) ca_dir="$2"; shift 2 ;;
    --python) python_prefix="$2"; shift 2 ;;
    --rebuild) rebuild=1; shift ;;
    *) echo "usage: $0 [--name IMAGE] [--mirror URL] [--ca-dir DIR] [--python PREFIX] [--rebuild]" >&2; exit 2 ;;
  esac
done
DOCKER="${DOCKER:-docker}"

if ((!rebuild)) && "$DOCKER" image inspect "$name" >/dev/null 2>&1; then
  echo "==> Base image $name exists (--rebuild to make it again)"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }
if [ -z "$mirror" ]; then  # the first Debian mirror of apt's own sources (deb822 or one-line format)
  mirror="$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
            | grep -oE 'https?://[^ ]*/debian/?' | grep -v security | head -n1 || true)"
  mirror="${mirror:-http://deb.debian.org/debian}"
fi

root="$(mktemp -d /var/tmp/cp-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT
echo "==> debootstrap --variant=minbase bookworm from $mirror"
t0=$SECONDS
include=ca-certificates
if [ -n "$python_prefix" ]; then  # the shared libraries of CPython's extension modules
  [ -x "$python_prefix/bin/python3.11" ] || { echo "$python_prefix/bin/python3.11 is missing" >&2; exit 2; }
  include+=",libssl3,libffi8,libsqlite3-0,libexpat1,libbz2-1.0,liblzma5,zlib1g,libreadline8,libncursesw6,libuuid1"
fi
debootstrap --variant=minbase --include="$include" bookworm "$root/fs" "$mirror" >"$root/debootstrap.log" 2>&1 \
  || { tail -n 30 "$root/debootstrap.log" >&2; exit 1; }
if [ -n "$ca_dir" ]; then
  n=0
  mkdir -p "$root/fs/usr/local/share/ca-certificates/extra"
  for crt in "$ca_dir"/*.crt; do
    [ -f "$crt" ] || continue
    cp "$crt" "$root/fs/usr/local/share/ca-certificates/extra/"
    n=$((n + 1))
  done
  chroot "$root/fs" update-ca-certificates >/dev/null
  echo "==> $n extra CA certificate(s) from $ca_dir trusted in the base"
fi
if [ -n "$python_prefix" ]; then
  fs="$root/fs/usr/local"
  mkdir -p "$fs/bin" "$fs/lib"
  cp -a "$python_prefix/bin/python3.11" "$fs/bin/"
  ln -sf python3.11 "$fs/bin/python3"
  ln -sf python3 "$fs/bin/python"
  cp -a "$python_prefix"/lib/libpython3.11.so* "$fs/lib/" 2>/dev/null || true  # a --enable-shared build
  tar -C "$python_prefix/lib" --exclude='python3.11/site-packages/*' --exclude='python3.11/test' \
      --exclude='__pycache__' -c python3.11 | tar -C "$fs/lib" -x
  chroot "$root/fs" ldconfig
  echo "==> $(chroot "$root/fs" /usr/local/bin/python3 -VV | head -n1) from $python_prefix in /usr/local"
fi
# the image's apt: no recommends, no caches kept in layers
printf 'APT::Install-Recommends "false";\n' >"$root/fs/etc/apt/apt.conf.d/90courseplatform"
rm -rf "$root/fs/var/cache/apt/archives/"*.deb "$root/fs/var/lib/apt/lists/"*
tar -C "$root/fs" -c . | "$DOCKER" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' - "$name" >/dev/null
echo "==> Base image $name made in $((SECONDS - t0)) s"
