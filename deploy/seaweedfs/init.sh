#!/bin/sh
# storage-init: the one-shot set-up of the stack's SeaweedFS (compose service `storage-init`,
# image chrislusf/seaweedfs:4.48, so only sh, busybox and `weed`). Safe to run on every `up`:
# it creates the bucket if missing and converges two S3 identities to what the environment says.
#
# Environment (required unless a default is shown):
#   STORAGE_BUCKET            the one bucket narrator uses (S3 naming: 3-63 of a-z 0-9 . -)
#   STORAGE_ADMIN_ACCESS_KEY  the operator's key: every action on every bucket
#   STORAGE_ADMIN_SECRET_KEY
#   STORAGE_ACCESS_KEY        the workers' key: Read, Write, List, Tagging on STORAGE_BUCKET only
#   STORAGE_SECRET_KEY          (keys: 3-128 of A-Z a-z 0-9 . _ -; secrets: 8-128, also / + =)
#   STORAGE_MASTER            master address, host:port[.grpcport]  (default storage:9333)
#   STORAGE_FILER             filer address, host:port[.grpcport]   (default storage:8888)
#   STORAGE_ADMIN_USER        identity names in SeaweedFS (defaults narrator-admin, narrator-worker)
#   STORAGE_WORKER_USER
#   STORAGE_INIT_TIMEOUT      seconds to wait for the server to answer (default 120)
#   WEED                      the weed binary (default weed)
#
# Until the first identity exists SeaweedFS serves S3 to anyone; once this has run, every
# request must be signed. An identity whose keys or actions differ from the environment (a
# rotated key, a renamed bucket) is deleted and made again, so old keys stop working.
# Secrets are never printed.
set -eu

fail() {
    echo "storage-init: $*" >&2
    exit 2
}

STORAGE_MASTER=${STORAGE_MASTER:-storage:9333}
STORAGE_FILER=${STORAGE_FILER:-storage:8888}
STORAGE_ADMIN_USER=${STORAGE_ADMIN_USER:-narrator-admin}
STORAGE_WORKER_USER=${STORAGE_WORKER_USER:-narrator-worker}
STORAGE_INIT_TIMEOUT=${STORAGE_INIT_TIMEOUT:-120}
WEED=${WEED:-weed}
STEP_TIMEOUT=30

matches() { # value, extended regex: the whole value must match
    printf '%s' "$1" | grep -Eqx -- "$2"
}

need() { # variable name, regex, what it must be
    eval "value=\${$1:-}"
    [ -n "$value" ] || fail "$1 is not set"
    matches "$value" "$2" || fail "$1 must be $3"
}

check_env() {
    need STORAGE_BUCKET '[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]' "a bucket name: 3-63 of a-z 0-9 . - (no leading/trailing . or -)"
    need STORAGE_ADMIN_ACCESS_KEY '[A-Za-z0-9._-]{3,128}' "3-128 characters of A-Z a-z 0-9 . _ -"
    need STORAGE_ACCESS_KEY '[A-Za-z0-9._-]{3,128}' "3-128 characters of A-Z a-z 0-9 . _ -"
    need STORAGE_ADMIN_SECRET_KEY '[A-Za-z0-9/+=._-]{8,128}' "8-128 characters of A-Z a-z 0-9 / + = . _ -"
    need STORAGE_SECRET_KEY '[A-Za-z0-9/+=._-]{8,128}' "8-128 characters of A-Z a-z 0-9 / + = . _ -"
    need STORAGE_ADMIN_USER '[A-Za-z0-9._-]{1,64}' "1-64 characters of A-Z a-z 0-9 . _ -"
    need STORAGE_WORKER_USER '[A-Za-z0-9._-]{1,64}' "1-64 characters of A-Z a-z 0-9 . _ -"
    need STORAGE_INIT_TIMEOUT '[1-9][0-9]{0,4}' "a whole number of seconds"
    need STORAGE_MASTER '[A-Za-z0-9._-]+:[0-9]+(\.[0-9]+)?' "host:port or host:port.grpcport"
    need STORAGE_FILER '[A-Za-z0-9._-]+:[0-9]+(\.[0-9]+)?' "host:port or host:port.grpcport"
    [ "$STORAGE_ACCESS_KEY" != "$STORAGE_ADMIN_ACCESS_KEY" ] ||
        fail "STORAGE_ACCESS_KEY must differ from STORAGE_ADMIN_ACCESS_KEY (the workers must not hold the admin key)"
    [ "$STORAGE_WORKER_USER" != "$STORAGE_ADMIN_USER" ] ||
        fail "STORAGE_WORKER_USER must differ from STORAGE_ADMIN_USER"
}

shell() { # one weed shell command [, seconds]
    # weed shell waits forever for an absent master, and on SIGTERM exits 0, which busybox's
    # timeout then passes on as success: only KILL makes a timed-out step fail.
    printf '%s\n' "$1" | timeout -s KILL "${2:-$STEP_TIMEOUT}" "$WEED" -logtostderr=true shell -master="$STORAGE_MASTER" -filer="$STORAGE_FILER" 2>&1
}

wait_for_server() {
    deadline=$(($(date +%s) + STORAGE_INIT_TIMEOUT))
    until shell "s3.bucket.list" 5 >/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "no SeaweedFS answered at master $STORAGE_MASTER, filer $STORAGE_FILER within ${STORAGE_INIT_TIMEOUT}s (STORAGE_MASTER, STORAGE_FILER)"
        sleep 2
    done
}

create_bucket() {
    if out=$(shell "s3.bucket.create -name $STORAGE_BUCKET"); then
        echo "storage-init: created bucket $STORAGE_BUCKET"
    elif printf '%s' "$out" | grep -q "already exists"; then
        echo "storage-init: bucket $STORAGE_BUCKET exists"
    else
        fail "could not create bucket $STORAGE_BUCKET: $out"
    fi
}

identity_state() { # user: its access keys and actions, sorted, one a line (never its secrets)
    shell "s3.configure" | awk -v user="$1" '
        /^  "[A-Za-z]+":/ { section = $1 }
        section != "\"identities\":" { next }
        $1 == "\"name\":" { gsub(/[",]/, "", $2); current = $2; next }
        current != user { next }
        $1 == "\"accessKey\":" { gsub(/[",]/, "", $2); print "key " $2; next }
        $1 == "\"actions\":" && $2 == "[" { in_actions = 1; next }
        in_actions && /\]/ { in_actions = 0; next }
        in_actions { gsub(/[ ",]/, ""); print "action " $0 }
    ' | sort
}

desired_state() { # access key, actions, bucket ("" for all buckets)
    {
        echo "key $1"
        for action in $(echo "$2" | tr ',' ' '); do
            if [ -n "$3" ]; then echo "action $action:$3"; else echo "action $action"; fi
        done
    } | sort
}

converge_identity() { # user, access key, secret key, actions, bucket ("" for all buckets)
    want=$(desired_state "$2" "$4" "$5")
    have=$(identity_state "$1")
    if [ -n "$have" ] && [ "$have" != "$want" ]; then
        shell "s3.configure -user=$1 -delete -apply" >/dev/null || fail "could not replace identity $1"
        echo "storage-init: identity $1 had other keys or actions; replaced"
    fi
    buckets=${5:+-buckets=$5}
    # Re-applying an unchanged identity changes nothing; a new secret for the same key is updated in place.
    out=$(shell "s3.configure -user=$1 -access_key=$2 -secret_key=$3 -actions=$4 $buckets -apply") ||
        fail "could not configure identity $1: $(printf '%s' "$out" | grep -iv secret | tail -n 3)"
    [ "$(identity_state "$1")" = "$want" ] || fail "identity $1 did not take its configuration"
}

check_env
wait_for_server
create_bucket
converge_identity "$STORAGE_ADMIN_USER" "$STORAGE_ADMIN_ACCESS_KEY" "$STORAGE_ADMIN_SECRET_KEY" "Admin,Read,Write,List,Tagging" ""
converge_identity "$STORAGE_WORKER_USER" "$STORAGE_ACCESS_KEY" "$STORAGE_SECRET_KEY" "Read,Write,List,Tagging" "$STORAGE_BUCKET"
echo "storage-init: $STORAGE_ADMIN_USER may do anything; $STORAGE_WORKER_USER may Read, Write, List, Tagging on $STORAGE_BUCKET only"
