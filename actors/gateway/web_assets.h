// The dashboard's static files, compiled into the binary from
// actors/gateway/web by embed_assets.cmake.
#pragma once

#include <span>

#include "actors/gateway/ws_server.h"

namespace vb::gateway {

std::span<const WebAsset> WebAssets();

}  // namespace vb::gateway
