// The Prometheus endpoint: GET /metrics over HTTP, served by civetweb (a
// maintained embedded server from Debian) on the control side, never on a
// worker. Each scrape renders a fresh snapshot.
#pragma once

#include <functional>
#include <memory>
#include <string>

struct mg_context;
struct mg_connection;

namespace passgate::control {

class MetricsServer {
 public:
  using Render = std::function<std::string()>;
  // listen: "ADDRESS:PORT", e.g. "127.0.0.1:9469". nullptr and *error when
  // the address cannot be bound.
  static std::unique_ptr<MetricsServer> start(const std::string& listen, Render render, std::string* error);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

 private:
  MetricsServer() = default;
  static int handle(mg_connection* conn, void* self);
  mg_context* ctx_ = nullptr;
  Render render_;
};

}  // namespace passgate::control
