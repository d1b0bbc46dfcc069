# One configuration in successive generations, for switching a running
# flint from one to the next as NixOS's switch-to-configuration does. Every
# generation changes each service below in a different way, and the hints
# NixOS writes into the units decide what the switch does to each:
#
#   nix-build nix/examples/switch.nix -o profile                      # generation 1
#   flint run --unit-dir profile/etc/systemd/system
#   nc -q1 127.0.0.1 8771 </dev/null          # hello from generation 1
#   nix-build nix/examples/switch.nix --arg generation 2 -o profile   # flips the link
#   flint ctl switch --dry-run                # the plan
#   flint ctl switch                          # (or run flint with --watch)
#   nc -q1 127.0.0.1 8771 </dev/null          # hello from generation 2
#
# The bodies of `systemd.sockets`/`systemd.services` can be pasted into a
# NixOS configuration unchanged.
{
  port ? 8771,
  python3 ? "/usr/bin/python3",
  generation ? 1,
  flint ? import ../lib.nix { },
}:

let
  gen = toString generation;
  # Configuration files as NixOS would put them under /etc
  # (`environment.etc."worker.conf".text`): the services read them at a
  # fixed path, so only their store paths, given as triggers, change.
  workerConf = builtins.toFile "worker.conf" "generation=${gen}\n";
  cacheRules = builtins.toFile "cache.rules" "max-age=${gen}h\n";
in
flint.unitTree {
  name = "switch-units";

  # The targets the units below are wanted by. NixOS's tree has systemd's
  # own; this one has no systemd package, so it names them itself (flint,
  # as systemd, reads a target's .wants/ only when the target exists).
  systemd.targets.sockets.description = "Sockets";
  systemd.targets.multi-user.description = "Multi-User System";

  # A socket-activated daemon (Accept=no) whose environment changes: the
  # switch stops it while flint keeps its socket listening, and the next
  # connection starts the new generation ("stopping the following units").
  systemd.sockets.hello = {
    description = "Greeter socket";
    wantedBy = [ "sockets.target" ];
    listenStreams = [ "127.0.0.1:${toString port}" ];
  };
  systemd.services.hello = {
    description = "Greeter";
    environment.GREETING = "hello from generation ${gen}";
    serviceConfig.ExecStart = "${python3} ${./hello.py}";
  };

  # One instance per connection (Accept=yes) whose script changes: running
  # instances finish, the next connection runs the new script.
  systemd.sockets.echo = {
    description = "Echo socket";
    wantedBy = [ "sockets.target" ];
    listenStreams = [ "127.0.0.1:${toString (port + 1)}" ];
    socketConfig.Accept = true;
  };
  systemd.services."echo@" = {
    description = "Echo connection";
    script = ''
      read -r line
      printf 'generation ${gen} echoes %s\n' "$line"
    '';
    serviceConfig.StandardInput = "socket";
  };

  # Changed, but never restarted by a switch
  # ("NOT restarting the following changed units").
  systemd.services.keep = {
    description = "Kept across switches";
    wantedBy = [ "multi-user.target" ];
    restartIfChanged = false;
    environment.GENERATION = gen;
    script = "exec sleep infinity";
  };

  # Reloaded instead of restarted ("reloading the following units"): its
  # `reload` script runs with the new generation's environment.
  systemd.services.reloader = {
    description = "Reloaded by switches";
    wantedBy = [ "multi-user.target" ];
    reloadIfChanged = true;
    environment.GENERATION = gen;
    script = "exec sleep infinity";
    reload = ''echo "reloader: reloading for generation $GENERATION"'';
  };

  # Only a restart trigger changes; restarted in one step rather than
  # stopped and started ("restarting the following units").
  systemd.services.worker = {
    description = "Restarted in place";
    wantedBy = [ "multi-user.target" ];
    stopIfChanged = false;
    restartTriggers = [ workerConf ];
    script = ''
      echo "worker: started"
      exec sleep infinity
    '';
  };

  # Only a reload trigger changes ("reloading the following units").
  systemd.services.cache = {
    description = "Reloaded when its rules change";
    wantedBy = [ "multi-user.target" ];
    reloadTriggers = [ cacheRules ];
    script = "exec sleep infinity";
    reload = ''echo "cache: reloading its rules"'';
  };
}
