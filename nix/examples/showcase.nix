# Every part of NixOS's unit rendering that flint has to read back, in one
# configuration: the golden files under tests/golden/nix/showcase/ are its
# rendering, and tests/nix.rs checks that systemd and flint load each unit
# alike and that the print daemon answers.
#
#   nix-build nix/examples/showcase.nix
#   flint check --unit-dir result/etc/systemd/system showcase.service
#   flint run --unit-dir result/etc/systemd/system printd.socket
#   echo report | nc -q1 127.0.0.1 8751
{
  port ? 8751,
  python3 ? "/usr/bin/python3",
  # What changes between two renderings (a configuration switch).
  generation ? 1,
  flint ? import ../lib.nix { },
}:

let
  # A package shipping its own units, as `systemd.packages` entries do.
  printd = builtins.path {
    path = ./printd;
    name = "printd";
  };
  config = builtins.toFile "showcase.conf" "generation=${toString generation}\n";
in
flint.unitTree {
  name = "showcase-units";
  systemd.packages = [ printd ];

  # A package's socket whose address the configuration replaces: the empty
  # value resets the package's ListenStream= (as NixOS's cups module does).
  # The package has the unit, so this becomes printd.socket.d/overrides.conf.
  systemd.sockets.printd = {
    wantedBy = [ "sockets.target" ];
    listenStreams = [
      ""
      "127.0.0.1:${toString port}"
    ];
  };
  # A drop-in over the package's template: a new environment variable.
  systemd.services."printd@".environment.PRINTD_NAME = "flint's printd";
  # A package unit the configuration turns off: masked (-> /dev/null).
  systemd.services.legacy.enable = false;
  # A unit of the configuration turned off: a store link to /dev/null.
  systemd.services.retired = {
    enable = false;
    serviceConfig.ExecStart = "/bin/false";
  };

  systemd.targets.showcase = {
    description = "Showcase units";
    wants = [ "showcase.service" ];
  };

  # The kitchen sink.
  systemd.services.showcase = {
    description = "Showcase of NixOS's service options";
    documentation = [
      "man:flint(1)"
      "https://example.org/flint"
    ];
    after = [ "printd.socket" ];
    wants = [ "printd.socket" ];
    before = [ "showcase.target" ];
    partOf = [ "showcase.target" ];
    conflicts = [ "legacy.service" ];
    onFailure = [ "showcase-failed.service" ];
    startLimitBurst = 3;
    startLimitIntervalSec = 60;
    unitConfig.ConditionPathExists = [
      "|/etc"
      "|!/nonexistent"
    ];
    wantedBy = [ "multi-user.target" ];
    requiredBy = [ "showcase.target" ];
    aliases = [ "kitchen-sink.service" ];

    # JSON-quoted on the way out: quotes, backslashes, control characters;
    # `$` is kept, `%` is a specifier (systemd expands %n, %% is a %).
    environment = {
      QUOTED = ''she said "hi"'';
      BACKSLASH = "C:\\path\\to";
      MULTILINE = "line one\nline two";
      TAB = "a\tb";
      ESCAPE = builtins.fromJSON ''"\u001b[1mbold\u001b[0m"'';
      DOLLAR = "$HOME stays";
      PERCENT = "100%%";
      UNIT = "%n";
      UNICODE = "héllo ✓";
      EMPTY = "";
      UNSET = null;
      CONFIG = config;
      GENERATION = toString generation;
    };
    path = [ "/usr" ];

    restartTriggers = [ config ];
    reloadTriggers = [ "reload-${toString generation}" ];
    stopIfChanged = false;
    notSocketActivated = true;

    preStart = ''
      echo "starting $GENERATION"
    '';
    script = ''
      echo "running as $1 with $CONFIG"
    '';
    scriptArgs = "%n --verbose";
    postStart = "echo started";
    reload = "echo reloading";
    preStop = "echo stopping";
    postStop = "echo stopped";

    serviceConfig = {
      Type = "oneshot";
      RemainAfterExit = true;
      ExecStartPre = [ "-${python3} -c 'print(1)'" ];
      TimeoutStartSec = 30;
      LimitNOFILE = 4096;
      ReadWritePaths = [
        "/tmp"
        "-/var/tmp"
      ];
      StandardOutput = "journal";
      PrivateTmp = false;
    };
  };
  systemd.services.showcase-failed = {
    description = "Runs when showcase.service fails";
    serviceConfig = {
      Type = "oneshot";
      ExecStart = "/bin/true";
    };
  };

  # The switch hints.
  systemd.services.keep = {
    description = "Never restarted by a switch";
    restartIfChanged = false;
    serviceConfig.ExecStart = "${python3} -c 'import time; time.sleep(3600)'";
  };
  systemd.services.reloader = {
    description = "Reloaded instead of restarted by a switch";
    reloadIfChanged = true;
    script = "exec sleep 3600";
    reload = "echo reloaded";
  };

  # A template and an instance drop-in (`overrideStrategy = "asDropin"`).
  systemd.services."worker@" = {
    description = "Worker %i";
    script = ''echo "worker $1 in mode ''${WORKER_MODE:-default}"'';
    scriptArgs = "%i";
    serviceConfig.Type = "oneshot";
  };
  systemd.services."worker@one" = {
    overrideStrategy = "asDropin";
    environment.WORKER_MODE = "one";
    wantedBy = [ "multi-user.target" ];
  };

  # Every way to give a socket its addresses, and socket options.
  systemd.sockets.multi = {
    description = "Streams, datagrams and options";
    listenStreams = [ "127.0.0.1:${toString (port + 1)}" ];
    listenDatagrams = [ "127.0.0.1:${toString (port + 2)}" ];
    socketConfig = {
      ListenStream = [ "%t/showcase/multi.sock" ];
      FileDescriptorName = "multi";
      Backlog = 64;
      SocketMode = "0660";
      TriggerLimitIntervalSec = 0;
      RuntimeDirectory = "showcase";
      Service = "showcase.service";
    };
  };

  # A unit as home-manager renders it (lib.generators.toINI): sections in
  # alphabetical order, Environment= unquoted, sd-switch's X-SwitchMethod.
  systemd.units."hm-style.service" = {
    wantedBy = [ "default.target" ];
    text = ''
      [Install]
      WantedBy=default.target

      [Service]
      Environment=PATH=/usr/bin:/bin
      ExecStart=/bin/sh -c 'echo home-manager style'
      Type=oneshot

      [Unit]
      Description=A unit in home-manager's shape
      X-Restart-Triggers=${config}
      X-SwitchMethod=restart
    '';
  };
}
