#!/bin/bash
#
# mkmount.sh: ask Swift and imgr to format (-f) and serve the volume "testvol"
# of a development cluster (imgr.md 2.6). The original targeted the
# docker-compose hosts "swift" and "dev"; here the defaults are the local
# dev cluster (iswift and imgr on 127.0.0.1) and can be changed with:
#
#   SWIFT_ADDR      Swift proxy host:port             (127.0.0.1:8080)
#   IMGR_ADDR       imgr HTTP admin host:port         (127.0.0.1:15346)
#   SWIFT_USER      auth v1 user                      (test:tester)
#   SWIFT_KEY       auth v1 key                       (testing)
#   SWIFT_ACCOUNT   account                           (AUTH_test)
#   CONTAINER       container holding the volume      (con)
#   VOLUME          volume name                       (testvol)
#   MKMOUNT_TRIES   attempts for each wait loop, 1 s apart (0 = forever; default 0)

usage() {
  echo "usage: $0 [-f] [-s] [-h]"
  echo "  -f  format the volume (refused by imgr if it is already formatted)"
  echo "  -s  give imgr a static AuthToken for the volume"
  echo "  -h  print this help"
}

Format=false
StaticAuthToken=false
while getopts "fsh" opt; do
  case $opt in
    f) Format=true ;;
    s) StaticAuthToken=true ;;
    h) usage; exit 0 ;;
    *) usage; exit 1 ;;
  esac
done

SWIFT_ADDR=${SWIFT_ADDR:-127.0.0.1:8080}
IMGR_ADDR=${IMGR_ADDR:-127.0.0.1:15346}
SWIFT_USER=${SWIFT_USER:-test:tester}
SWIFT_KEY=${SWIFT_KEY:-testing}
SWIFT_ACCOUNT=${SWIFT_ACCOUNT:-AUTH_test}
CONTAINER=${CONTAINER:-con}
VOLUME=${VOLUME:-testvol}
TRIES=${MKMOUNT_TRIES:-0}
StorageURL="http://$SWIFT_ADDR/v1/$SWIFT_ACCOUNT/$CONTAINER"

# 1. A token: it is in a response header, hence -v; strip the CR of the
# header line (the older /bin/sh script kept it and broke the JSON below).
AuthToken=""
n=0
while [ -z "$AuthToken" ]; do
  n=$((n + 1))
  if [ "$TRIES" -gt 0 ] && [ "$n" -gt "$TRIES" ]; then
    echo "$0: no token from http://$SWIFT_ADDR/auth/v1.0" >&2
    exit 1
  fi
  sleep 1
  AuthToken=$(curl -v -s -H "X-Auth-User: $SWIFT_USER" -H "X-Auth-Key: $SWIFT_KEY" \
                "http://$SWIFT_ADDR/auth/v1.0" 2>&1 |
              awk '/X-Auth-Token:/ {print $3}' | tr -d '\r')
done
echo "AuthToken: $AuthToken"

# 2. The container (iswift also wants the account; real Swift refuses that
# PUT, which is harmless).
curl -s -f -H "X-Auth-Token: $AuthToken" "http://$SWIFT_ADDR/v1/$SWIFT_ACCOUNT" -X PUT > /dev/null
curl -s -f -H "X-Auth-Token: $AuthToken" "$StorageURL" -X PUT > /dev/null

# 3. Wait for imgr's HTTP server (-f: an HTTP error is a failure).
n=0
until curl -s -f "http://$IMGR_ADDR/version" > /dev/null; do
  n=$((n + 1))
  if [ "$TRIES" -gt 0 ] && [ "$n" -ge "$TRIES" ]; then
    echo "$0: imgr at http://$IMGR_ADDR does not answer" >&2
    exit 1
  fi
  sleep 1
done

# 4. Format and serve. As in the original, failures here (409 when the
# volume is already formatted or served) are not fatal.
if $Format; then
  curl -s -f "http://$IMGR_ADDR/volume" -X POST \
    -d "{\"StorageURL\":\"$StorageURL\",\"AuthToken\":\"$AuthToken\"}" > /dev/null
fi
if $StaticAuthToken; then
  curl -s -f "http://$IMGR_ADDR/volume/$VOLUME" -X PUT \
    -d "{\"StorageURL\":\"$StorageURL\",\"AuthToken\":\"$AuthToken\"}" > /dev/null
else
  curl -s -f "http://$IMGR_ADDR/volume/$VOLUME" -X PUT \
    -d "{\"StorageURL\":\"$StorageURL\"}" > /dev/null
fi
exit 0
