# proxyfs-c images. The stages follow the original's names (deploy.md 1, 7.1):
#
#   base       Debian 12 with every package scripts/deps.sh installs
#   buildable  base (kept as a name so the original's commands still work)
#   dev        the tool chain with the repo bind-mounted at /src
#   build      a build of the repo copied into /clone (outputs in /clone/build)
#   deploy     the executables, their sample confs, the helper scripts and
#              fresh certificates, all in /
#
#   docker build --target dev -t proxyfs_dev .
#   docker compose up -d dev            (or: swift ickpt imgr iclient)
#
# Every package comes from scripts/deps.sh, the same list the README's
# commands install, so a container and a bare machine build alike.
# Debian 12 rather than the original's Ubuntu 22.04: it is the distribution
# the repository is built and tested on. No Go tool chain.

FROM debian:12 AS base
ARG TimeZone=Etc/UTC
RUN ln -snf /usr/share/zoneinfo/$TimeZone /etc/localtime && echo $TimeZone > /etc/timezone
COPY scripts/deps.sh /tmp/deps.sh
RUN bash /tmp/deps.sh jq gdb && rm -rf /var/lib/apt/lists/* /tmp/deps.sh

FROM base AS buildable

FROM buildable AS dev
VOLUME /src
WORKDIR /src
RUN git config --global --add safe.directory /src

# .dockerignore keeps local build trees and .git out of the copy.
FROM buildable AS build
COPY . /clone
WORKDIR /clone
RUN cmake -S . -B build -Wno-dev -DCMAKE_BUILD_TYPE=RelWithDebInfo \
 && cmake --build build -j"$(nproc)" --target ickpt imgr iclient icert iswift idestroy

# Built from buildable, not base, as the original: the tool chain stays for
# debugging. Each executable is build/<module>/<module> (cmake's layout).
# mkmount.sh is not in the original's image; iclient.sh here calls it.
FROM buildable AS deploy
WORKDIR /
COPY --from=build /clone/build/ickpt/ickpt       /clone/ickpt/ickpt.conf ./
COPY --from=build /clone/build/imgr/imgr         /clone/imgr/imgr.conf /clone/imgr/mkmount.sh ./
COPY --from=build /clone/build/iclient/iclient   /clone/iclient/iclient.conf /clone/iclient/iclient.sh ./
COPY --from=build /clone/build/icert/icert       /clone/build/iswift/iswift /clone/build/idestroy/idestroy ./
COPY --from=build /clone/iswift/iswift.conf      ./
# The same certificates and file names as the original (deploy.md 1.4):
# imgr.conf and iclient.conf name them, and docker-compose.yml points ickpt
# at ickpt_cert.pem/ickpt_key.pem. Regenerated on every image build.
RUN ./icert -ca -ed25519 -caCert ca_cert.pem -caKey ca_key.pem -commonName RootCA -ttl 3560 \
 && ./icert -ed25519 -caCert ca_cert.pem -caKey ca_key.pem -commonName ickpt -ttl 3560 \
            -cert ickpt_cert.pem -key ickpt_key.pem -dns ickpt \
 && ./icert -ed25519 -caCert ca_cert.pem -caKey ca_key.pem -commonName imgr -ttl 3560 \
            -cert imgr_cert.pem -key imgr_key.pem -dns imgr
