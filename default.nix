# flint, built with nixpkgs' Rust tooling: `nix-build` gives result/bin/flint.
# flint's Nix library (nix/lib.nix) needs no nixpkgs; see the README,
# "Using flint with Nix".
{
  pkgs ? import <nixpkgs> { },
}:
pkgs.callPackage ./nix/package.nix { }
