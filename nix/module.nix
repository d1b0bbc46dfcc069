# `services.flint`: one module for NixOS, home-manager and system-manager.
#
# It renders `services.flint.{services,sockets,targets,timers,paths,units,packages}` —
# written exactly like `systemd.services`/`systemd.sockets`/... — with
# flint's Nix library into a unit tree, and gives a launcher,
# `flint-launch`, that runs `flint run --unit-dir <tree>`. How flint is
# then started depends on the host:
#
# - home-manager: the launcher is in `home.packages`; with
#   `startOnActivation`, `home-manager switch` starts it in the background
#   when it is not running (flint has no live switching yet: a running
#   flint keeps its tree until it is restarted, and activation says so).
# - containers and other hosts without systemd: use
#   `config.services.flint.launcher` as the entry point (for example in a
#   dockerTools image's `config.Entrypoint`).
# - NixOS and system-manager, which have systemd: the launcher and
#   `/etc/flint/units` (the tree); `systemdService = true` also runs flint
#   itself as `flint.service`. `systemdUnits` takes units NixOS already
#   rendered (`config.systemd.units`) into flint's tree unchanged.
{
  config,
  lib,
  pkgs,
  options,
  ...
}:

let
  inherit (lib)
    mkOption
    mkIf
    mkMerge
    optionalAttrs
    optionalString
    types
    ;

  cfg = config.services.flint;

  isHomeManager = options ? home && options.home ? activation;
  hasEnvironment = options ? environment && options.environment ? etc;
  hasSystemd = options ? systemd && options.systemd ? services && !isHomeManager;

  flintLib = import ./lib.nix {
    inherit (pkgs.stdenv.hostPlatform) system;
    sh = pkgs.runtimeShell;
    coreutils = "${pkgs.coreutils}/bin";
    inherit (pkgs) runtimeShell;
    inherit (cfg) defaultPath globalEnvironment;
  };

  directory = if cfg.user then "etc/systemd/user" else "etc/systemd/system";

  # Units NixOS (or system-manager) rendered itself, taken over unchanged.
  fromSystemd = lib.genAttrs cfg.systemdUnits (
    name:
    let
      u = config.systemd.units.${name};
    in
    {
      inherit (u) unit enable;
      wantedBy = u.wantedBy or [ ];
      requiredBy = u.requiredBy or [ ];
      upheldBy = u.upheldBy or [ ];
      aliases = u.aliases or [ ];
      overrideStrategy = u.overrideStrategy or "asDropinIfExists";
    }
  );

  tree = flintLib.unitTree {
    name = "flint-units";
    inherit directory;
    inherit (cfg)
      services
      sockets
      targets
      timers
      paths
      packages
      ;
    units = fromSystemd // cfg.units;
  };

  flintArgs = [
    "run"
  ]
  ++ lib.optional cfg.user "--user"
  ++ [
    "--unit-dir"
    tree.unitDir
  ]
  ++ cfg.extraArgs;

  launcher = pkgs.writeShellScriptBin "flint-launch" ''
    exec ${lib.getExe' cfg.package "flint"} ${lib.escapeShellArgs flintArgs} "$@"
  '';

  definitions =
    what:
    mkOption {
      type = types.attrsOf (types.attrsOf types.anything);
      default = { };
      description = ''
        Definitions in the shape of NixOS's `systemd.${what}.<name>`, rendered
        as NixOS renders them into flint's unit tree.
      '';
    };
in
{
  options.services.flint = {
    enable = lib.mkEnableOption "flint, which runs systemd socket and service units without systemd";

    package = mkOption {
      type = types.package;
      # Not `pkgs.flint`: in nixpkgs that name is the number theory library.
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage ./package.nix { }";
      description = "The flint package.";
    };

    user = mkOption {
      type = types.bool;
      default = isHomeManager;
      defaultText = lib.literalExpression "true under home-manager";
      description = "Run flint as a user manager (`flint run --user`), with a user unit tree.";
    };

    services = definitions "services";
    sockets = definitions "sockets";
    targets = definitions "targets";
    timers = definitions "timers";
    paths = definitions "paths";
    units = mkOption {
      type = types.attrsOf (types.attrsOf types.anything);
      default = { };
      description = "Units given as text, in the shape of NixOS's `systemd.units.<name>`.";
    };
    packages = mkOption {
      type = types.listOf types.package;
      default = [ ];
      description = ''
        Packages whose `{etc,lib}/systemd/system` units go into the tree; a
        definition of the same name becomes its `overrides.conf` drop-in.
      '';
    };
    systemdUnits = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [
        "nix-daemon.socket"
        "nix-daemon.service"
      ];
      description = ''
        NixOS and system-manager: units of `config.systemd.units` (rendered by
        NixOS itself) to put into flint's tree unchanged.
      '';
    };

    defaultPath = mkOption {
      type = types.listOf (types.either types.package types.str);
      default = with pkgs; [
        coreutils
        findutils
        gnugrep
        gnused
      ];
      description = "Packages appended to every service's `path`, as NixOS appends them.";
    };
    globalEnvironment = mkOption {
      type = types.attrsOf (types.nullOr types.str);
      default = {
        TZDIR = "${pkgs.tzdata}/share/zoneinfo";
      }
      // optionalAttrs pkgs.stdenv.hostPlatform.isGnu {
        LOCALE_ARCHIVE = "${pkgs.glibcLocales}/lib/locale/locale-archive";
      };
      defaultText = lib.literalExpression "{ TZDIR = ...; LOCALE_ARCHIVE = ...; }";
      description = "Environment of every service (NixOS: `systemd.globalEnvironment`).";
    };
    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "--refuse-unenforced" ];
      description = "More arguments for `flint run`.";
    };

    startOnActivation = mkOption {
      type = types.bool;
      default = false;
      description = ''
        home-manager: start flint in the background on activation when it is
        not running. Its log goes to `$XDG_STATE_HOME/flint/flint.log`.
      '';
    };
    systemdService = mkOption {
      type = types.bool;
      default = false;
      description = "NixOS and system-manager: run flint itself as `flint.service`.";
    };

    tree = mkOption {
      type = types.package;
      readOnly = true;
      description = "The rendered unit tree; the units are in `<tree>/etc/systemd/{system,user}`.";
    };
    launcher = mkOption {
      type = types.package;
      readOnly = true;
      description = "`bin/flint-launch`: runs `flint run` on the tree (an entry point for containers).";
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      services.flint.tree = tree;
      services.flint.launcher = launcher;
    }
    (optionalAttrs isHomeManager {
      home.packages = [ launcher ];
      home.activation.flint = lib.hm.dag.entryAfter [ "writeBoundary" ] ''
        flintState="''${XDG_STATE_HOME:-$HOME/.local/state}/flint"
        if ${lib.getExe' cfg.package "flint"} ctl --user status >/dev/null 2>&1; then
          if [ "$(cat "$flintState/tree" 2>/dev/null)" != ${lib.escapeShellArg "${tree}"} ]; then
            echo "flint is running an older unit tree; restart it (flint-launch) to apply ${tree}"
          fi
        ${optionalString cfg.startOnActivation ''
          else
            run mkdir -p "$flintState"
            run ${pkgs.util-linux}/bin/setsid -f ${lib.getExe launcher} \
              >>"$flintState/flint.log" 2>&1 </dev/null
            [ -n "''${DRY_RUN:-}" ] || echo ${lib.escapeShellArg "${tree}"} >"$flintState/tree"
        ''}
        fi
      '';
    })
    (optionalAttrs hasEnvironment {
      environment.systemPackages = [ launcher ];
      environment.etc."flint/units".source = tree.unitDir;
    })
    (optionalAttrs hasSystemd {
      systemd.services.flint = mkIf cfg.systemdService {
        description = "flint: socket activation of ${directory}";
        wantedBy = [ "multi-user.target" ];
        restartTriggers = [ tree ];
        serviceConfig = {
          ExecStart = "${lib.getExe launcher}";
          KillMode = "mixed";
        };
      };
    })
  ]);
}
