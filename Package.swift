// swift-tools-version:6.1
// SPDX-License-Identifier: Apache-2.0
import PackageDescription

let package = Package(
    name: "swift-efs",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "EFS", targets: ["EFS"]),
        .library(name: "EFSCore", targets: ["EFSCore"]),
        .library(name: "EFSRawStream", targets: ["EFSRawStream"]),
        .library(name: "EFSArchive", targets: ["EFSArchive"]),
        .library(name: "EFSWindows", targets: ["EFSWindows"]),
        .executable(name: "efs", targets: ["efs"]),
        .library(name: "efsapi", type: .dynamic, targets: ["EFSWin32"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
    ],
    targets: [
        // Pure: formats, codecs, key wrapping. The only importer of swift-crypto. No I/O.
        .target(
            name: "EFSCore",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        // Pure: the MS-EFSR raw stream encoder and single-step decoder. No I/O.
        .target(name: "EFSRawStream", dependencies: ["EFSCore"]),
        // Pure: Windows EFS interop: `$EFS` metadata, FEK unwrap, data units, ROBS / efs_raw inputs. No I/O.
        .target(name: "EFSWindows", dependencies: ["EFSCore", "EFSRawStream"]),
        // Pure: the POSIX pax (ustar) archive codec of efs backup/restore. No I/O.
        .target(name: "EFSArchive", dependencies: ["EFSCore"]),
        // C shims for GNU/Linux calls the Glibc module lacks. Imported by EFSSystem only.
        .target(name: "CEFSSystem"),
        // The only importer of Glibc.
        .target(
            name: "EFSSystem",
            dependencies: ["CEFSSystem", .product(name: "SystemPackage", package: "swift-system")]
        ),
        // The public Swift API.
        .target(
            name: "EFS",
            dependencies: [
                "EFSCore", "EFSRawStream", "EFSSystem", "EFSArchive", "EFSWindows",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // The C header (efs.h) of the Win32 EFS API, and the thread-local last error.
        .target(name: "CEFSWin32"),
        // The C ABI: the Win32 EFS functions as @_cdecl functions over the EFS API (libefsapi.so).
        .target(
            name: "EFSWin32",
            dependencies: ["EFS", "EFSSystem", "CEFSWin32", .product(name: "SystemPackage", package: "swift-system")]
        ),
        // libfuse3: a module map and a small shim header. Imported by EFSFUSE only.
        .systemLibrary(name: "CFUSE", pkgConfig: "fuse3", providers: [.apt(["libfuse3-dev"])]),
        // The FUSE file system of `efs mount`: the only importer of CFUSE; maps EFS errors to errno in one place.
        .target(
            name: "EFSFUSE",
            dependencies: ["CFUSE", "EFS", "EFSSystem", .product(name: "SystemPackage", package: "swift-system")]
        ),
        .executableTarget(
            name: "efs",
            dependencies: [
                "EFS", "EFSCore", "EFSRawStream", "EFSSystem", "EFSFUSE", "EFSWindows",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // Shared test helpers: temporary directories, key stores, running the CLI.
        .target(
            name: "EFSTestSupport",
            dependencies: ["EFS", "EFSCore", "EFSSystem", .product(name: "SystemPackage", package: "swift-system")],
            path: "Tests/EFSTestSupport"
        ),
        .testTarget(
            name: "EFSCoreTests",
            dependencies: ["EFSCore"],
            resources: [.copy("Vectors")]
        ),
        .testTarget(name: "EFSRawStreamTests", dependencies: ["EFSRawStream", "EFSCore"]),
        .testTarget(
            name: "EFSWindowsTests",
            dependencies: ["EFSWindows", "EFSCore", "EFSRawStream"],
            resources: [.copy("Vectors")]
        ),
        .testTarget(name: "EFSArchiveTests", dependencies: ["EFSArchive", "EFSCore"]),
        .testTarget(name: "EFSSystemTests", dependencies: ["EFSSystem", "EFSTestSupport"]),
        .testTarget(
            name: "EFSTests",
            dependencies: [
                "EFS", "EFSCore", "EFSSystem", "EFSTestSupport", "EFSArchive", "EFSRawStream", "EFSWindows",
            ],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "EFSFUSETests",
            dependencies: [
                "efs", "EFSFUSE", "EFS", "EFSCore", "EFSSystem", "EFSTestSupport",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .testTarget(name: "efsCLITests", dependencies: ["efs", "EFS", "EFSCore", "EFSSystem", "EFSTestSupport"]),
    ]
)
