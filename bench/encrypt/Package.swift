// swift-tools-version:6.1
// SPDX-License-Identifier: Apache-2.0
// The in-place encrypt/decrypt benchmark of issue 2. Not part of the main package (and not built by CI) so that
// it can depend on swift-crypto directly for its reference seal loop. See ../README.md.
import PackageDescription

let package = Package(
    name: "efs-encrypt-bench",
    platforms: [.macOS(.v15)],
    dependencies: [
        // `name:` so that the product reference does not depend on what the checkout directory is called.
        .package(name: "swift-efs", path: "../.."),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
    ],
    targets: [
        .executableTarget(
            name: "efs-encrypt-bench",
            dependencies: [
                .product(name: "EFS", package: "swift-efs"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        )
    ]
)
