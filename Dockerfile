# syntax=docker/dockerfile:1
# remote-settings-lambdas images. The build runs the same commands as `make lambda-zip` (cargo-zigbuild
# with zig from PyPI, glibc 2.34, the release profile), so both images ship the Lambda zip's binary.
#
#   docker build -t remote-settings-lambdas .                        # CLI / cron image (default)
#   docker run --rm -e SERVER=https://… remote-settings-lambdas validate_signature
#   docker build --target lambda -t remote-settings-lambdas:lambda .  # Lambda container image

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends make python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The packaging tools first: a layer that changes only with their pins.
COPY Makefile ./
COPY packaging/requirements.txt packaging/
RUN make tools
COPY . .
RUN make lambda-zip \
    && install -m 0755 target/x86_64-unknown-linux-gnu/release/remote-settings-lambdas /bootstrap

# Lambda container image: the custom runtime's bootstrap; CMD is the handler (any command name).
FROM public.ecr.aws/lambda/provided:al2023 AS lambda
COPY --from=build /bootstrap /var/runtime/bootstrap
CMD ["validate_signature"]

# CLI / cron image: glibc, libgcc and CA certificates only, running as an unprivileged user.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build /bootstrap /usr/local/bin/remote-settings-lambdas
# The distroless image's "nonroot" user.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/remote-settings-lambdas"]
CMD ["help"]
