# Shared helpers for weir's scripts.

step() { printf '\n==> %s\n' "$*"; }

# apt-get install the named packages that are missing.
apt_install() {
    local missing=()
    for p in "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    step "installing ${missing[*]}"
    if [ -z "${WEIR_APT_UPDATED:-}" ]; then
        apt-get update -qq
        export WEIR_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
}

need_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "weir needs a Rust toolchain (cargo) on PATH" >&2
        exit 1
    fi
    apt_install gcc pkg-config
}

# protoc: building weir-store needs it (etcd-client generates its gRPC code
# at build time with prost-build).
need_protoc() {
    apt_install protobuf-compiler
}

# etcd (/usr/bin/etcd, for weir-store's etcd tests and backend) and protoc.
# The test fixture installs etcd-server itself when it is missing, but doing
# it here keeps apt output out of the test log.
need_etcd() {
    apt_install etcd-server protobuf-compiler
}

# Print one closing line over every `test result:` line of a cargo test log.
summarise() {
    awk '/^test result:/ {p += $4; f += $6; i += $8} END {printf "\nweir tests: %d passed, %d failed, %d ignored\n", p, f, i; if (f > 0) exit 1}' "$1"
}
