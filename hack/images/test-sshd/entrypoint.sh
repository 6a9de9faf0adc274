#!/bin/sh
# Entrypoint of airlock.dev/test-sshd (busybox sh): prepares the user, its authorized keys and the
# host keys, then runs the command (default: /usr/sbin/sshd -D -e, in the foreground, logging to
# stderr). Runs as root: sshd switches to the user after authentication.
#
#   SSH_USER                  the login user, created if missing (default ops), shell /bin/sh
#   SSH_UID                   its uid and gid (default 1000)
#   SSH_AUTHORIZED_KEYS       public keys (authorized_keys lines), and/or
#   SSH_AUTHORIZED_KEYS_FILE  a mounted authorized_keys file
#                             (default /etc/ssh/authorized-keys/authorized_keys)
#   SSH_HOST_KEY_DIR          mounted host keys, ssh_host_<type>_key files (default
#                             /etc/ssh/host-keys); only they are used. Without any, ed25519,
#                             ecdsa and rsa host keys are generated.
#   SSHD_PORT                 the port (default 2222)
set -eu

user="${SSH_USER:-ops}"
uid="${SSH_UID:-1000}"
keysfile="${SSH_AUTHORIZED_KEYS_FILE:-/etc/ssh/authorized-keys/authorized_keys}"
keydir="${SSH_HOST_KEY_DIR:-/etc/ssh/host-keys}"

if [ "$(id -u)" != 0 ]; then
  echo "test-sshd: start as root (sshd switches to $user after authentication)" >&2
  exit 1
fi

if ! grep -q "^$user:" /etc/passwd; then
  grep -q "^$user:" /etc/group || echo "$user:x:$uid:" >> /etc/group
  echo "$user:x:$uid:$uid:$user:/home/$user:/bin/sh" >> /etc/passwd
fi
home="$(grep "^$user:" /etc/passwd | cut -d: -f6)"
mkdir -p "$home/.ssh"
: > "$home/.ssh/authorized_keys"
if [ -n "${SSH_AUTHORIZED_KEYS:-}" ]; then
  printf '%s\n' "$SSH_AUTHORIZED_KEYS" >> "$home/.ssh/authorized_keys"
fi
if [ -f "$keysfile" ]; then
  cat "$keysfile" >> "$home/.ssh/authorized_keys"
fi
if [ ! -s "$home/.ssh/authorized_keys" ]; then
  echo "test-sshd: warning: no authorized keys (set SSH_AUTHORIZED_KEYS or mount $keysfile); nobody can log in" >&2
fi
chown -R "$uid:$uid" "$home"
chmod 0755 "$home"
chmod 0700 "$home/.ssh"
chmod 0600 "$home/.ssh/authorized_keys"

# the privilege separation directory (a runtime may mount an empty tmpfs on /run)
mkdir -p /run/sshd
chmod 0755 /run/sshd

printf 'Port %s\n' "${SSHD_PORT:-2222}" > /etc/ssh/sshd_config.d/10-port.conf
hostkeys=/etc/ssh/sshd_config.d/20-host-keys.conf
: > "$hostkeys"
for k in "$keydir"/ssh_host_*_key; do
  [ -f "$k" ] || continue
  name="$(basename "$k")"
  # sshd ignores a private key that others can read (a Secret volume's files are 0644)
  cp "$k" "/etc/ssh/$name"
  chmod 0600 "/etc/ssh/$name"
  if [ -f "$k.pub" ]; then cp "$k.pub" "/etc/ssh/$name.pub"; fi
  echo "HostKey /etc/ssh/$name" >> "$hostkeys"
done
if [ ! -s "$hostkeys" ]; then
  ssh-keygen -A >&2
  for t in ed25519 ecdsa rsa; do echo "HostKey /etc/ssh/ssh_host_${t}_key" >> "$hostkeys"; done
fi

exec "$@"
