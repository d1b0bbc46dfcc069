{
  description = "flint: runs systemd .socket and .service units without systemd";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});
      # flint's Nix library with nixpkgs' tools in the builders (sandbox-clean).
      libFor =
        system: pkgs:
        import ./nix/lib.nix {
          inherit system;
          sh = pkgs.runtimeShell;
          coreutils = "${pkgs.coreutils}/bin";
          inherit (pkgs) runtimeShell;
        };
    in
    {
      # The library needs no nixpkgs: `flint.lib { system = "x86_64-linux"; }`
      # (flakes evaluate purely, so the system must be given).
      lib = import ./nix/lib.nix;

      packages = forAllSystems (
        system: pkgs: rec {
          flint = pkgs.callPackage ./nix/package.nix { };
          default = flint;
        }
      );

      nixosModules.default = ./nix/module.nix;
      homeManagerModules.default = ./nix/module.nix;
      systemManagerModules.default = ./nix/module.nix;

      checks = forAllSystems (
        system: pkgs: {
          package = self.packages.${system}.flint;
          echo-units = import ./nix/examples/echo.nix {
            flint = libFor system pkgs;
            python3 = "${pkgs.python3}/bin/python3";
          };
          showcase-units = import ./nix/examples/showcase.nix {
            flint = libFor system pkgs;
            python3 = "${pkgs.python3}/bin/python3";
          };
        }
      );
    };
}
