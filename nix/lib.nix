# flint's Nix library: renders `systemd.services`/`systemd.sockets`/
# `systemd.timers`/`systemd.paths` definitions written in NixOS's option shape into unit files laid out the
# way NixOS lays them out, and builds a unit tree that
# `flint run --unit-dir <tree>/etc/systemd/system` runs.
#
# Builtins only: no nixpkgs is needed to evaluate or build anything here.
# The arguments say where the few tools the builders use come from; the
# defaults are the host's (`/bin/sh`, coreutils in `/usr/bin:/bin`), which
# works with Nix's sandbox off (Debian's nix.conf default). With nixpkgs at
# hand, pass store paths instead (nix/module.nix does), and the builds are
# sandbox-clean.
#
# What differs from NixOS, by design (see README, "Using flint with Nix"):
# - `defaultPath` is empty, so a service without `path` gets no `PATH=`
#   line (NixOS always appends coreutils, findutils, gnugrep, gnused and
#   systemd); `globalEnvironment` is empty, so there are no
#   `LOCALE_ARCHIVE=`/`TZDIR=` lines. Pass them as arguments to get them.
# - Job scripts (`script`, `preStart`, ...) start with `#!${runtimeShell}`
#   (the host's bash by default) instead of nixpkgs' bash.
# - Definitions are plain attribute sets, not modules: each option is
#   given once (no `mkIf`/`mkForce`/merging of several definitions).
{
  system ? builtins.currentSystem,
  # The shell that runs the builders.
  sh ? "/bin/sh",
  # PATH for the builders: mkdir, ln, cp, chmod.
  coreutils ? "/usr/bin:/bin",
  # The interpreter of job scripts (`script`, `preStart`, ...).
  runtimeShell ? "/bin/bash",
  # Environment every service gets (NixOS: `systemd.globalEnvironment`).
  globalEnvironment ? { },
  # Packages appended to every service's `path` (NixOS: coreutils,
  # findutils, gnugrep, gnused, systemd).
  defaultPath ? [ ],
}:

let
  inherit (builtins)
    attrNames
    concatLists
    concatMap
    concatStringsSep
    elem
    filter
    hasAttr
    isAttrs
    isList
    isPath
    isString
    listToAttrs
    mapAttrs
    replaceStrings
    toJSON
    ;

  mapAttrsToList = f: set: map (n: f n set.${n}) (attrNames set);
  concatStrings = concatStringsSep "";
  optionalString = cond: s: if cond then s else "";
  optionalAttrs = cond: set: if cond then set else { };
  flatten = x: if isList x then concatMap flatten x else [ x ];
  filterAttrs =
    pred: set:
    listToAttrs (
      concatMap (
        n:
        if pred n set.${n} then
          [
            {
              name = n;
              value = set.${n};
            }
          ]
        else
          [ ]
      ) (attrNames set)
    );

  # Single-quotes a string for the builders' shell.
  shq = s: "'" + replaceStrings [ "'" ] [ "'\\''" ] s + "'";

  # A store path's text: paths are copied into the store, derivations
  # give their output path, everything else goes through toString.
  str = v: if isPath v || isString v || isAttrs v then "${v}" else toString v;

  # How NixOS's module system merges two definitions of one unit option:
  # lists concatenate, equal values are one value, anything else is an
  # error.
  mergeOption =
    where: key: a: b:
    if isList a && isList b then
      a ++ b
    else if a == b then
      a
    else
      throw "flint: ${where}: the option ${key} is defined twice with different values (${toJSON a} and ${toJSON b})";

  mergeSection =
    where: generated: given:
    generated
    // mapAttrs (
      k: v: if hasAttr k generated then mergeOption where k generated.${k} v else v
    ) given;

  # The options a definition may carry, per kind, with NixOS's defaults.
  sharedDefaults = {
    enable = true;
    overrideStrategy = "asDropinIfExists";
    wantedBy = [ ];
    requiredBy = [ ];
    upheldBy = [ ];
    aliases = [ ];
  };

  commonDefaults = sharedDefaults // {
    description = "";
    documentation = [ ];
    requires = [ ];
    wants = [ ];
    upholds = [ ];
    after = [ ];
    before = [ ];
    bindsTo = [ ];
    partOf = [ ];
    conflicts = [ ];
    requisite = [ ];
    unitConfig = { };
    onFailure = [ ];
    onSuccess = [ ];
    restartTriggers = [ ];
    reloadTriggers = [ ];
  };

  # startLimitBurst/startLimitIntervalSec have no default: they are
  # written only when given.
  optionalCommon = [
    "startLimitBurst"
    "startLimitIntervalSec"
  ];

  serviceDefaults = commonDefaults // {
    environment = { };
    path = [ ];
    serviceConfig = { };
    script = "";
    scriptArgs = "";
    preStart = "";
    postStart = "";
    reload = "";
    preStop = "";
    postStop = "";
    restartIfChanged = true;
    reloadIfChanged = false;
    stopIfChanged = true;
    notSocketActivated = false;
    startAt = [ ];
    # Accepted and ignored: shellcheck needs nixpkgs.
    enableStrictShellChecks = false;
  };

  socketDefaults = commonDefaults // {
    listenStreams = [ ];
    listenDatagrams = [ ];
    socketConfig = { };
  };

  targetDefaults = commonDefaults;

  timerDefaults = commonDefaults // {
    timerConfig = { };
  };

  pathDefaults = commonDefaults // {
    pathConfig = { };
  };

  # NixOS fills these in itself; a pasted definition may still carry them.
  internal = [
    "name"
    "jobScripts"
  ];

  # Fills in defaults and refuses options this library does not know, as
  # NixOS refuses undeclared options.
  withDefaults =
    kind: defaults: name: def:
    let
      known = attrNames defaults ++ optionalCommon ++ internal;
      unknown = filter (k: !(elem k known)) (attrNames def);
    in
    if unknown != [ ] then
      throw "flint: systemd.${kind}.${name}: unknown option(s) ${concatStringsSep ", " unknown}"
    else
      defaults // removeAttrs def internal;
in
rec {
  # `true`/`false` literally, everything else as toString does.
  toOption =
    x:
    if x == true then
      "true"
    else if x == false then
      "false"
    else
      toString x;

  # One `Key=value` line per value (a list repeats the key), keys in
  # attribute-name (byte) order.
  attrsToSection =
    as:
    concatStrings (
      concatLists (
        mapAttrsToList (
          name: value: map (x: "${name}=${toOption x}\n") (if isList value then value else [ value ])
        ) as
      )
    );

  # The store-path-safe form of a unit name.
  mkPathSafeName =
    replaceStrings
      [ "@" ":" "\\" "[" "]" ]
      [
        "-"
        "-"
        "-"
        ""
        ""
      ];

  # nixpkgs' writeText: a store file holding `text`.
  writeText =
    name: text:
    derivation {
      inherit name system text;
      builder = sh;
      PATH = coreutils;
      passAsFile = [ "text" ];
      args = [
        "-c"
        ''cp "$textPath" "$out"''
      ];
    };

  # A job script as NixOS makes it (`makeJobScript`): an executable
  # `<store>/unit-script-<name>/bin/<name>` running `set -e` and the text;
  # `@` becomes `_` and `\` becomes `-` in the name. Returns its path.
  makeJobScript =
    name: text:
    let
      scriptName = replaceStrings [ "\\" "@" ] [ "-" "_" ] (replaceStrings [ "\\" ] [ "\\\\" ] name);
      drv = derivation {
        inherit system scriptName runtimeShell;
        name = "unit-script-${scriptName}";
        builder = sh;
        PATH = coreutils;
        text = ''
          #!${runtimeShell}
          set -e

          ${text}
        '';
        passAsFile = [ "text" ];
        args = [
          "-c"
          ''
            set -e
            mkdir -p "$out/bin"
            cp "$textPath" "$out/bin/$scriptName"
            chmod 555 "$out/bin/$scriptName"
            "$runtimeShell" -n "$out/bin/$scriptName"
          ''
        ];
      };
    in
    "${drv}/bin/${scriptName}";

  # The `[Unit]` keys NixOS derives from the dependency options, merged
  # with `unitConfig`.
  unitSection =
    kind: name: def:
    let
      nonEmpty = opt: key: optionalAttrs (def.${opt} != [ ]) { ${key} = toString def.${opt}; };
      triggers =
        key: list:
        optionalAttrs (list != [ ]) {
          ${key} = "${writeText "${key}-${name}" (
            toString (map (x: if isPath x then "${x}" else x) (flatten list))
          )}";
        };
      generated =
        nonEmpty "requires" "Requires"
        // nonEmpty "wants" "Wants"
        // nonEmpty "upholds" "Upholds"
        // nonEmpty "after" "After"
        // nonEmpty "before" "Before"
        // nonEmpty "bindsTo" "BindsTo"
        // nonEmpty "partOf" "PartOf"
        // nonEmpty "conflicts" "Conflicts"
        // nonEmpty "requisite" "Requisite"
        // triggers "X-Restart-Triggers" def.restartTriggers
        // triggers "X-Reload-Triggers" def.reloadTriggers
        // optionalAttrs (def.description != "") { Description = def.description; }
        // nonEmpty "documentation" "Documentation"
        // nonEmpty "onFailure" "OnFailure"
        // nonEmpty "onSuccess" "OnSuccess"
        // optionalAttrs (def ? startLimitIntervalSec) {
          StartLimitIntervalSec = toString def.startLimitIntervalSec;
        }
        // optionalAttrs (def ? startLimitBurst) { StartLimitBurst = toString def.startLimitBurst; };
    in
    mergeSection "systemd.${kind}.${name}.unitConfig" generated def.unitConfig;

  # `[Unit]`, the type's section, and `[Install]` when wantedBy is set.
  unitText =
    unitConfig: body: wantedBy:
    "[Unit]\n"
    + attrsToSection unitConfig
    + "\n"
    + body
    + optionalString (wantedBy != [ ]) "\n[Install]\nWantedBy=${concatStringsSep " " wantedBy}\n";

  # What NixOS keeps of a unit besides its text (`systemd.units.<name>`).
  unitAttrs = def: {
    inherit (def)
      enable
      overrideStrategy
      wantedBy
      requiredBy
      upheldBy
      aliases
      ;
  };

  # systemd.services.<name> -> { text; enable; wantedBy; ... }
  serviceToUnit =
    name: given:
    let
      def = withDefaults "services" serviceDefaults name given;
      where = "systemd.services.${name}";
      path = def.path ++ defaultPath;
      binOf = p: if isAttrs p then p.bin or p.out or p else p;
      pathEnv = optionalAttrs (path != [ ]) {
        PATH =
          concatStringsSep ":" (map (p: "${binOf p}/bin") path)
          + ":"
          + concatStringsSep ":" (map (p: "${binOf p}/sbin") path);
      };
      environment =
        globalEnvironment // mergeSection "${where}.environment" pathEnv def.environment;
      job = suffix: makeJobScript "${name}-${suffix}";
      generated =
        optionalAttrs (def.preStart != "") { ExecStartPre = [ (job "pre-start" def.preStart) ]; }
        // optionalAttrs (def.script != "") {
          ExecStart = job "start" def.script + " " + def.scriptArgs;
        }
        // optionalAttrs (def.postStart != "") { ExecStartPost = [ (job "post-start" def.postStart) ]; }
        // optionalAttrs (def.reload != "") { ExecReload = job "reload" def.reload; }
        // optionalAttrs (def.preStop != "") { ExecStop = job "pre-stop" def.preStop; }
        // optionalAttrs (def.postStop != "") { ExecStopPost = job "post-stop" def.postStop; };
      serviceConfig = mergeSection "${where}.serviceConfig" generated def.serviceConfig;
      envLines = concatStrings (
        map (
          n:
          optionalString (environment.${n} != null) "Environment=${toJSON "${n}=${str environment.${n}}"}\n"
        ) (attrNames environment)
      );
      hints =
        (
          if def.reloadIfChanged then
            "X-ReloadIfChanged=true\n"
          else if !def.restartIfChanged then
            "X-RestartIfChanged=false\n"
          else
            ""
        )
        + optionalString (!def.stopIfChanged) "X-StopIfChanged=false\n"
        + optionalString def.notSocketActivated "X-NotSocketActivated=true\n";
    in
    unitAttrs def
    // {
      text = unitText (unitSection "services" name def) (
        "[Service]\n" + envLines + hints + attrsToSection serviceConfig
      ) def.wantedBy;
    };

  # systemd.sockets.<name> -> { text; enable; wantedBy; ... }
  socketToUnit =
    name: given:
    let
      def = withDefaults "sockets" socketDefaults name given;
    in
    unitAttrs def
    // {
      text = unitText (unitSection "sockets" name def) (
        "[Socket]\n"
        + attrsToSection def.socketConfig
        + "\n"
        + concatStringsSep "\n" (map (s: "ListenStream=${s}") def.listenStreams)
        + "\n"
        + concatStringsSep "\n" (map (s: "ListenDatagram=${s}") def.listenDatagrams)
        + "\n"
      ) def.wantedBy;
    };

  # systemd.timers.<name> -> { text; ... }, as NixOS's timerToUnit.
  timerToUnit =
    name: given:
    let
      def = withDefaults "timers" timerDefaults name given;
    in
    unitAttrs def
    // {
      text = unitText (unitSection "timers" name def) (
        "[Timer]\n" + attrsToSection def.timerConfig + "\n"
      ) def.wantedBy;
    };

  # systemd.paths.<name> -> { text; ... }, as NixOS's pathToUnit.
  pathToUnit =
    name: given:
    let
      def = withDefaults "paths" pathDefaults name given;
    in
    unitAttrs def
    // {
      text = unitText (unitSection "paths" name def) (
        "[Path]\n" + attrsToSection def.pathConfig + "\n"
      ) def.wantedBy;
    };

  # The timers NixOS makes for services with `startAt` (systemd.nix):
  # wanted by timers.target, `OnCalendar=` the service's `startAt`.
  startAtTimers =
    services:
    mapAttrs
      (_: s: {
        wantedBy = [ "timers.target" ];
        timerConfig.OnCalendar = s.startAt;
      })
      (
        filterAttrs (
          _: s: (s.enable or true) && (s.startAt or [ ]) != [ ] && (s.startAt or "") != ""
        ) services
      );

  # systemd.targets.<name> -> { text; ... } (NixOS writes no [Install]).
  targetToUnit =
    name: given:
    let
      def = withDefaults "targets" targetDefaults name given;
    in
    unitAttrs def // { text = "[Unit]\n" + attrsToSection (unitSection "targets" name def) + "\n"; };

  # All units of a configuration, as NixOS's `systemd.units`: unit file
  # name -> { text; enable; wantedBy; requiredBy; upheldBy; aliases;
  # overrideStrategy }. `units` passes units through as they are (`text`
  # or a ready `unit` directory), as NixOS's `systemd.units.<name>` does.
  renderUnits =
    {
      services ? { },
      sockets ? { },
      targets ? { },
      timers ? { },
      paths ? { },
      units ? { },
    }:
    let
      suffixed =
        suffix: f: set:
        listToAttrs (
          mapAttrsToList (n: v: {
            name = "${n}.${suffix}";
            value = f n v;
          }) set
        );
    in
    suffixed "service" serviceToUnit services
    // suffixed "socket" socketToUnit sockets
    // suffixed "target" targetToUnit targets
    // suffixed "timer" timerToUnit (startAtTimers services // timers)
    // suffixed "path" pathToUnit paths
    // mapAttrs (_: u: sharedDefaults // u) units;

  # Unit file name -> text, for looking at or comparing renderings.
  renderTexts = cfg: mapAttrs (_: u: u.text) (filterAttrs (_: u: u ? text) (renderUnits cfg));

  # One unit file in the store, as NixOS makes it:
  # `<store>/<hash>-unit-<safe name>/<name>`, or a link to /dev/null when
  # the unit is disabled.
  makeUnit =
    name: unit:
    if unit.enable then
      derivation {
        inherit system;
        name = "unit-${mkPathSafeName name}";
        unitName = name;
        text = unit.text;
        builder = sh;
        PATH = coreutils;
        passAsFile = [ "text" ];
        args = [
          "-c"
          ''mkdir -p "$out" && cp "$textPath" "$out/$unitName"''
        ];
      }
    else
      derivation {
        inherit system;
        name = "unit-${mkPathSafeName name}-disabled";
        unitName = name;
        builder = sh;
        PATH = coreutils;
        args = [
          "-c"
          ''mkdir -p "$out" && ln -s /dev/null "$out/$unitName"''
        ];
      };

  # A unit tree laid out as NixOS's `generateUnits` lays out
  # /etc/systemd/system:
  # - every unit file of `packages` (`<pkg>/{etc,lib}/systemd/system/*`,
  #   or `.../user/*` for a user tree), linked;
  # - each rendered unit linked in as `<name>`, or as
  #   `<name>.d/overrides.conf` when a package already has that unit
  #   (`overrideStrategy = "asDropinIfExists"`, the default) or always
  #   (`"asDropin"`, for template instances); a disabled unit that a
  #   package has is masked (-> /dev/null);
  # - `aliases` as links beside the unit;
  # - `wantedBy`/`requiredBy`/`upheldBy` as relative links
  #   `<target>.wants/<name> -> ../<name>`.
  # The definitions may be given as NixOS gives them (`systemd.services`,
  # `systemd.sockets`, `systemd.targets`, `systemd.units`,
  # `systemd.packages`) or as top-level arguments. The result is a
  # derivation whose `unitDir` is `<out>/${directory}`.
  unitTree =
    {
      systemd ? { },
      services ? systemd.services or { },
      sockets ? systemd.sockets or { },
      targets ? systemd.targets or { },
      timers ? systemd.timers or { },
      paths ? systemd.paths or { },
      units ? systemd.units or { },
      packages ? systemd.packages or [ ],
      name ? "flint-units",
      directory ? "etc/systemd/system",
    }:
    let
      rendered = renderUnits {
        inherit
          services
          sockets
          targets
          timers
          paths
          units
          ;
      };
      # Packages' units come from the same kind of directory: system or user.
      typeDir = baseNameOf directory;
      unitOf = n: u: u.unit or (makeUnit n u);
      lines = f: concatStrings (concatLists (mapAttrsToList f rendered));
      link =
        n: u:
        let
          file = "${unitOf n u}/${n}";
        in
        if u.overrideStrategy == "asDropin" then
          "mkdir -p ${shq "${n}.d"}\nln -sfn ${shq file} ${shq "${n}.d/overrides.conf"}\n"
        else
          ''
            if [ -e ${shq n} ]; then
              ${
                if u.enable then
                  "mkdir -p ${shq "${n}.d"}\n  ln -sfn ${shq file} ${shq "${n}.d/overrides.conf"}"
                else
                  "ln -sfn /dev/null ${shq n}"
              }
            else
              ln -sfn ${shq file} ${shq n}
            fi
          '';
      deps =
        suffix: n: targets':
        map (t: "mkdir -p ${shq "${t}.${suffix}"}\nln -sfn ${shq "../${n}"} ${shq "${t}.${suffix}/"}\n") targets';
      script = ''
        set -e
        mkdir -p "$out/$directory"
        cd "$out/$directory"
        for pkg in ${concatStringsSep " " (map (p: shq (str p)) packages)}; do
          for fn in "$pkg"/etc/systemd/${typeDir}/* "$pkg"/lib/systemd/${typeDir}/*; do
            [ -e "$fn" ] || [ -L "$fn" ] || continue
            base=''${fn##*/}
            case "$base" in *.wants) continue ;; esac
            if [ -d "$fn" ]; then
              mkdir -p "$base"
              for f in "$fn"/*; do
                [ -e "$f" ] || [ -L "$f" ] || continue
                ln -sfn "$f" "$base/"
              done
            else
              ln -sfn "$fn" "$base"
            fi
          done
        done
        ${lines (n: u: [ (link n u) ])}
        ${lines (n: u: map (a: "ln -sfn ${shq n} ${shq a}\n") u.aliases)}
        ${lines (n: u: deps "wants" n u.wantedBy)}
        ${lines (n: u: deps "upholds" n u.upheldBy)}
        ${lines (n: u: deps "requires" n u.requiredBy)}
      '';
      drv = derivation {
        inherit name system directory;
        builder = sh;
        PATH = coreutils;
        args = [
          "-c"
          script
        ];
      };
    in
    drv
    // {
      unitDir = "${drv}/${directory}";
      units = rendered;
    };
}
