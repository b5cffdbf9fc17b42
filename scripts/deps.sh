# Sourced by run-demo.sh and run-tests.sh: installs the Debian packages the
# build needs, only those that are missing, with sudo when not root.
eda_install_deps() {
    local pkgs="build-essential cmake pkg-config libzmq3-dev libczmq-dev libmsgpack-dev libjansson-dev \
libsqlite3-dev libcriterion-dev libmicrohttpd-dev clang-format $*"
    local missing=()
    for p in $pkgs; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "installing: ${missing[*]}"
    $sudo apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
}

# eda_build DIR [cmake args...]: configure and build everything into DIR.
eda_build() {
    local dir=$1
    shift
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null &&
        cmake --build "$dir" -j "$(nproc)" -- --no-print-directory
}

# eda_build_programs DIR: builds only the three services and eda into DIR.
eda_build_programs() {
    cmake -S . -B "$1" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
        cmake --build "$1" -j "$(nproc)" --target order-service customer-service \
            inventory-service eda-cli -- --no-print-directory
}
