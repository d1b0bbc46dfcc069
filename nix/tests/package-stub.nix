# nix/package.nix evaluated without nixpkgs: `rustPlatform.buildRustPackage`
# returns its arguments, and `lib` has the few functions the file uses.
# tests/nix.rs checks the name, the version and the source it would build
# (evaluate with a writable store: the source is copied into it).
let
  lib = {
    removePrefix =
      prefix: s:
      let
        n = builtins.stringLength prefix;
      in
      if builtins.substring 0 n s == prefix then
        builtins.substring n (builtins.stringLength s - n) s
      else
        s;
    splitString = sep: s: builtins.filter builtins.isString (builtins.split sep s);
    licenses = {
      mit = "MIT";
      asl20 = "Apache-2.0";
    };
    platforms.linux = [ "x86_64-linux" ];
  };
  args = import ../package.nix {
    inherit lib;
    rustPlatform.buildRustPackage = a: a;
  };
in
{
  inherit (args) pname version;
  lockFile = builtins.pathExists args.cargoLock.lockFile;
  source = builtins.attrNames (builtins.readDir args.src);
  skipsPlugins = args.FLINT_SKIP_PLUGIN_BUILD == "1";
}
