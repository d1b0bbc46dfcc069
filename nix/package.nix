# flint built with nixpkgs' Rust tooling (callPackage style):
#   nix-build                      (default.nix at the top of the repository)
#   nix build .#default            (flake.nix)
#
# The example WebAssembly plugins are not built: they need the
# wasm32-unknown-unknown standard library and a second workspace's
# dependencies (plugins/Cargo.lock), which nixpkgs' rustc does not ship.
# Plugins built elsewhere still load (`Path=` in a unit's plugin section).
{
  lib,
  rustPlatform,
}:

let
  root = ../.;
  cargo = builtins.fromTOML (builtins.readFile (root + "/Cargo.toml"));
  # What cargo reads: the manifests, the lock file, the crates' sources,
  # the test targets core/Cargo.toml names, and the plugin interface. Not
  # target/, the plugins' workspace, the docs or the Nix files.
  wanted = [
    "Cargo.toml"
    "Cargo.lock"
    "core"
    "bench"
    "tests"
    "wit"
  ];
  src = builtins.path {
    name = "flint-source";
    path = root;
    filter =
      path: type:
      let
        rel = lib.removePrefix (toString root + "/") (toString path);
        top = builtins.head (lib.splitString "/" rel);
      in
      builtins.elem top wanted;
  };
in
rustPlatform.buildRustPackage {
  pname = "flint";
  inherit (cargo.workspace.package) version;
  inherit src;
  cargoLock.lockFile = root + "/Cargo.lock";

  # core/build.rs skips the example plugins (see above).
  FLINT_SKIP_PLUGIN_BUILD = "1";
  cargoBuildFlags = [
    "--package"
    "flint"
  ];
  # The integration tests run real daemons, systemd as an oracle and
  # root-only checks; run them with `cargo test` outside the sandbox.
  doCheck = false;

  meta = {
    description = "Runs systemd .socket and .service units without systemd";
    license = with lib.licenses; [
      mit
      asl20
    ];
    mainProgram = "flint";
    platforms = lib.platforms.linux;
  };
}
