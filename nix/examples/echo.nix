# Two socket-activated services defined as on NixOS, rendered and laid out
# by flint's Nix library without nixpkgs:
#
#   nix-build nix/examples/echo.nix
#   flint run --unit-dir result/etc/systemd/system
#   echo hello | nc -q1 127.0.0.1 8741   # echo@.service, one instance per connection
#   echo hello | nc -q1 127.0.0.1 8742   # upper.service, started on the first connection
#
# The bodies of `systemd.sockets`/`systemd.services` below can be pasted
# into a NixOS configuration unchanged.
{
  port ? 8741,
  greeting ? "hello from Nix",
  python3 ? "/usr/bin/python3",
  flint ? import ../lib.nix { },
}:

flint.unitTree {
  name = "echo-units";

  # One bash instance per connection (Accept=yes): the script reads a line
  # from the socket on stdin and answers on stdout.
  systemd.sockets.echo = {
    description = "Echo server socket";
    wantedBy = [ "sockets.target" ];
    listenStreams = [ "127.0.0.1:${toString port}" ];
    socketConfig.Accept = true;
  };
  systemd.services."echo@" = {
    description = "Echo server connection";
    environment.GREETING = greeting;
    script = ''
      read -r line
      printf '%s: %s\n' "$GREETING" "$line"
    '';
    serviceConfig.StandardInput = "socket";
  };

  # One long-lived python3 process (Accept=no) that accepts on the
  # listening socket it inherits as fd 3 and upper-cases what it reads.
  systemd.sockets.upper = {
    description = "Upper-casing server socket";
    wantedBy = [ "sockets.target" ];
    listenStreams = [ "127.0.0.1:${toString (port + 1)}" ];
  };
  systemd.services.upper = {
    description = "Upper-casing server";
    serviceConfig = {
      ExecStart = "${python3} ${./upper.py}";
      Restart = "on-failure";
    };
  };
}
