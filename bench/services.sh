# bench/services.sh: how the bench scripts start the three services, sourced
# by bench/run.sh and bench/instructions.sh. Each service listens on ipc://
# under one folder and keeps its database there; $build holds the binaries.

# bench_peers DIR: sets the array `peers` to the three services' --peer
# options.
bench_peers() {
    local name
    peers=()
    for name in order customer inventory; do
        peers+=(--peer "$name-service=ipc://$1/$name-events,ipc://$1/$name-commands")
    done
}

# bench_service NAME DIR SYNC: sets the array `svc` to the command line of
# NAME-service with its database DIR/NAME.db and --sync SYNC (`peers` set
# by bench_peers first).
bench_service() {
    local name=$1 dir=$2
    svc=("$build/$name-service/$name-service" --events "ipc://$dir/$name-events"
        --commands "ipc://$dir/$name-commands" "${peers[@]}" --db "$dir/$name.db"
        --sync "$3")
}
