# nix/module.nix evaluated without nixpkgs: a stub `lib` with the few
# functions the module uses (mkIf/mkMerge as plain merges, options read
# back as their defaults) and a stub `pkgs` whose tools are the host's.
# tests/nix.rs checks the result and builds and runs `launcher`.
{
  # "home-manager", "nixos" or "system-manager": which options exist.
  host ? "home-manager",
  # A directory with bin/flint.
  flintPrefix ? "/usr/local",
  port ? 8761,
}:

let
  inherit (builtins)
    attrNames
    foldl'
    isAttrs
    listToAttrs
    mapAttrs
    ;
  recursiveUpdate =
    a: b:
    a
    // mapAttrs (
      n: v: if isAttrs v && isAttrs (a.${n} or null) && !(v ? outPath) then recursiveUpdate a.${n} v else v
    ) b;
  # As nixpkgs' lib.escapeShellArg: quoted only when needed.
  escapeShellArg =
    arg:
    let
      s = toString arg;
    in
    if builtins.match "[[:alnum:],._+:@%/-]+" s != null then
      s
    else
      "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] s + "'";

  lib = {
    mkOption = o: o // { _isOption = true; };
    mkEnableOption = what: {
      _isOption = true;
      default = false;
      description = "Whether to enable ${what}.";
    };
    mkIf = cond: v: if cond then v else { };
    mkMerge = foldl' recursiveUpdate { };
    optionalAttrs = cond: v: if cond then v else { };
    optionalString = cond: s: if cond then s else "";
    optional = cond: x: if cond then [ x ] else [ ];
    genAttrs =
      names: f:
      listToAttrs (
        map (n: {
          name = n;
          value = f n;
        }) names
      );
    getExe = drv: "${drv}/bin/${drv.meta.mainProgram}";
    getExe' = drv: name: "${drv}/bin/${name}";
    inherit escapeShellArg;
    escapeShellArgs = args: builtins.concatStringsSep " " (map escapeShellArg args);
    literalExpression = text: { inherit text; };
    types = rec {
      bool = "bool";
      str = "str";
      package = "package";
      anything = "anything";
      attrsOf = t: "attrsOf ${t}";
      listOf = t: "listOf ${t}";
      nullOr = t: "nullOr ${t}";
      either = a: b: "either ${a} ${b}";
    };
    hm.dag.entryAfter = after: data: { inherit after data; };
  };

  host' = "/usr";
  pkgs = {
    stdenv.hostPlatform = {
      system = builtins.currentSystem;
      isGnu = true;
    };
    runtimeShell = "/bin/sh";
    coreutils = host';
    findutils = host';
    gnugrep = host';
    gnused = host';
    tzdata = host';
    glibcLocales = host';
    util-linux = host';
    writeShellScriptBin =
      name: text:
      derivation {
        inherit name text;
        system = builtins.currentSystem;
        builder = "/bin/sh";
        PATH = "/usr/bin:/bin";
        passAsFile = [ "text" ];
        args = [
          "-c"
          ''
            mkdir -p "$out/bin"
            { echo '#!/bin/sh'; cat "$textPath"; } >"$out/bin/$name"
            chmod 555 "$out/bin/$name"
          ''
        ];
      }
      // {
        meta.mainProgram = name;
      };
    callPackage = _: _: flintPrefix;
  };

  # The options each host declares that the module looks at.
  hostOptions = {
    home-manager = {
      home.activation = { };
      home.packages = { };
    };
    nixos = {
      environment.etc = { };
      environment.systemPackages = { };
      systemd.services = { };
      systemd.units = { };
    };
    system-manager = hostOptions.nixos;
  };
  options = hostOptions.${host};

  module = import ../module.nix;
  declared = (module { inherit lib pkgs options config; }).options.services.flint;
  defaults = mapAttrs (_: o: o.default or null) declared;

  settings = {
    enable = true;
    package = flintPrefix;
    sockets.echo = {
      wantedBy = [ "sockets.target" ];
      listenStreams = [ "127.0.0.1:${toString port}" ];
      socketConfig.Accept = true;
    };
    services."echo@" = {
      environment.GREETING = "module";
      script = ''
        read -r line
        echo "$GREETING: $line"
      '';
      serviceConfig.StandardInput = "socket";
    };
  };
  config = {
    services.flint = defaults // settings;
    systemd.units = { };
  };
  result = (module { inherit lib pkgs options config; }).config;
  cfg = result.services.flint;
  user = defaults.user;
in
{
  inherit (cfg) launcher tree;
  inherit user;
  # What each host gets.
  installed =
    if host == "home-manager" then
      {
        packages = map (p: p.name) result.home.packages;
        activation = result.home.activation ? flint;
      }
    else
      {
        packages = map (p: p.name) result.environment.systemPackages;
        etc = result.environment.etc."flint/units".source == "${cfg.tree}/etc/systemd/system";
        service = result.systemd.services ? flint;
      };
  optionNames = attrNames declared;
}
