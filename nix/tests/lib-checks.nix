# Small checks of flint's Nix library, evaluated without nixpkgs by
# tests/nix.rs: `nix-instantiate --eval --strict --json nix/tests/lib-checks.nix`
# gives the names of the checks that fail (an empty list when all pass).
let
  flint = import ../lib.nix { };
  texts = flint.renderTexts;
  # Whether evaluating `x` fully throws.
  throws = x: !(builtins.tryEval (builtins.deepSeq x x)).success;
  endsWith =
    suffix: s:
    let
      n = builtins.stringLength s;
      k = builtins.stringLength suffix;
    in
    n >= k && builtins.substring (n - k) k s == suffix;
  withHost = import ../lib.nix {
    globalEnvironment = {
      TZDIR = "/usr/share/zoneinfo";
      LANG = "C.UTF-8";
    };
    defaultPath = [ "/usr" ];
  };

  checks = {
    safe-names =
      flint.mkPathSafeName "sshd@.service" == "sshd-.service"
      && flint.mkPathSafeName "a:b\\c[d].service" == "a-b-cd.service";
    script-names =
      endsWith "-unit-script-foo_bar-start/bin/foo_bar-start" (flint.makeJobScript "foo@bar-start" "true")
      && endsWith "/bin/a--b" (flint.makeJobScript "a\\b" "true");
    options-as-written =
      map flint.toOption [
        true
        false
        5
        null
        "x"
      ] == [
        "true"
        "false"
        "5"
        ""
        "x"
      ];
    # A socket with nothing set still has both sections and the blank
    # lines around the (empty) address lists.
    empty-socket = (texts { sockets.s = { }; })."s.socket" == "[Unit]\n\n[Socket]\n\n\n\n";
    empty-service = (texts { services.s = { }; })."s.service" == "[Unit]\n\n[Service]\n";
    target-has-no-install =
      (texts {
        targets.t = {
          wantedBy = [ "multi-user.target" ];
          wants = [ "a.service" ];
        };
      })."t.target" == "[Unit]\nWants=a.service\n\n";
    # NixOS's timerToUnit, and the timer it makes for `startAt`.
    timer-renders = (texts {
      timers.t.timerConfig = {
        OnBootSec = "5min";
        Unit = "x.service";
      };
    })."t.timer" == "[Unit]\n\n[Timer]\nOnBootSec=5min\nUnit=x.service\n\n";
    start-at-makes-a-timer =
      (texts {
        services.s = {
          script = "true";
          startAt = "daily";
        };
      })."s.timer" == "[Unit]\n\n[Timer]\nOnCalendar=daily\n\n\n[Install]\nWantedBy=timers.target\n"
      && (flint.renderUnits { services.s.startAt = [ "Mon" "Fri" ]; })."s.timer".wantedBy == [
        "timers.target"
      ]
      && (texts { services.s.startAt = [ "Mon" "Fri" ]; })."s.timer"
        == "[Unit]\n\n[Timer]\nOnCalendar=Mon\nOnCalendar=Fri\n\n\n[Install]\nWantedBy=timers.target\n"
      && !((texts { services.s.startAt = [ ]; }) ? "s.timer");
    path-renders =
      (texts {
        paths.p = {
          wantedBy = [ "paths.target" ];
          pathConfig.PathExists = "/run/flag";
        };
      })."p.path" == "[Unit]\n\n[Path]\nPathExists=/run/flag\n\n\n[Install]\nWantedBy=paths.target\n";
    unknown-option-refused = throws (texts { services.s.serviceconfig.Type = "simple"; });
    script-and-exec-start-conflict = throws (
      texts {
        services.s = {
          script = "true";
          serviceConfig.ExecStart = "/bin/true";
        };
      }
    );
    lists-concatenate =
      let
        t =
          (texts {
            services.s = {
              preStart = "true";
              serviceConfig.ExecStartPre = [ "/bin/true" ];
            };
          })."s.service";
      in
      builtins.match ".*ExecStartPre=/nix/store/[^\n]*-pre-start\nExecStartPre=/bin/true\n.*" t != null;
    path-and-environment-path-conflict = throws (
      texts {
        services.s = {
          path = [ "/usr" ];
          environment.PATH = "/bin";
        };
      }
    );
    path-uses-bin-outputs =
      builtins.match ".*Environment=\"PATH=/p-bin/bin:/q/bin:/p-bin/sbin:/q/sbin\"\n.*" (
        (texts {
          services.s.path = [
            {
              outPath = "/p";
              bin = "/p-bin";
            }
            "/q"
          ];
        })."s.service"
      ) != null;
    host-environment =
      (withHost.renderTexts {
        services.s = {
          environment.LANG = "de_DE.UTF-8";
          path = [ "/opt/tool" ];
        };
      })."s.service" == ''
        [Unit]

        [Service]
        Environment="LANG=de_DE.UTF-8"
        Environment="PATH=/opt/tool/bin:/usr/bin:/opt/tool/sbin:/usr/sbin"
        Environment="TZDIR=/usr/share/zoneinfo"
      '';
    reload-wins-over-restart =
      (texts {
        services.s = {
          reloadIfChanged = true;
          restartIfChanged = false;
        };
      })."s.service" == "[Unit]\n\n[Service]\nX-ReloadIfChanged=true\n";
    unit-config-merges =
      (texts {
        services.s = {
          after = [ "a.target" ];
          unitConfig.After = "a.target";
          unitConfig.Documentation = [ "man:x(1)" ];
        };
      })."s.service" == "[Unit]\nAfter=a.target\nDocumentation=man:x(1)\n\n[Service]\n";
    disabled-unit-keeps-text = (flint.renderUnits { services.s.enable = false; })."s.service".enable == false;
    triggers-are-store-files =
      builtins.match "/nix/store/[a-z0-9]{32}-X-Restart-Triggers-s" (
        builtins.head (
          builtins.match ".*X-Restart-Triggers=([^\n]*)\n.*" (
            (texts { services.s.restartTriggers = [ "a" ]; })."s.service"
          )
        )
      ) != null;
  };
in
builtins.filter (name: !checks.${name}) (builtins.attrNames checks)
