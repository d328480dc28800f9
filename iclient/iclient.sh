#!/bin/bash
#
# iclient.sh: the iclient container's command (deploy.md 4.2). It waits for
# Swift and imgr, has imgr serve the volume (formatting it first with -f),
# then runs iclient in the foreground, so the container lives as long as
# iclient does. The Swift and imgr steps are imgr/mkmount.sh's, pointed at
# the docker-compose hosts "swift" and "imgr".
#
# Deliberate deviation from the original: it formatted on every start, so a
# restarted container lost the volume's data. Here formatting needs -f
# (deploy.md 7.4); imgr refuses it (409) once the volume is formatted anyway.
#
# Everything is looked up next to this script (the deploy image keeps it in
# /): mkmount.sh, iclient, iclient.conf and the conf's relative PEM paths.
# SWIFT_ADDR and IMGR_ADDR (host:port) and the other mkmount.sh variables
# may be set in the environment.

usage() {
  echo "usage: $0 [-f] [-s] [-h]"
  echo "  -f  format the volume first (a new, empty file system)"
  echo "  -s  give imgr a static AuthToken for the volume"
  echo "  -h  print this help"
}

MkmountFlags=()
while getopts "fsh" opt; do
  case $opt in
    f) MkmountFlags+=(-f) ;;
    s) MkmountFlags+=(-s) ;;
    h) usage; exit 0 ;;
    *) usage; exit 1 ;;
  esac
done

cd "$(dirname "$0")" || exit 1
export SWIFT_ADDR=${SWIFT_ADDR:-swift:8080}
export IMGR_ADDR=${IMGR_ADDR:-imgr:15346}
./mkmount.sh "${MkmountFlags[@]}" || exit 1
exec ./iclient iclient.conf
