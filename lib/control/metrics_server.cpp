#include "control/metrics_server.hpp"

#include <civetweb.h>

#include <cstring>

namespace passgate::control {

std::unique_ptr<MetricsServer> MetricsServer::start(const std::string& listen, Render render, std::string* error) {
  std::unique_ptr<MetricsServer> s(new MetricsServer());
  s->render_ = std::move(render);
  mg_init_library(0);
  const char* options[] = {"listening_ports", listen.c_str(), "num_threads", "2", nullptr};
  mg_callbacks callbacks{};
  s->ctx_ = mg_start(&callbacks, s.get(), options);
  if (!s->ctx_) {
    *error = "cannot serve Prometheus metrics on " + listen + " (address in use or not local?)";
    return nullptr;
  }
  mg_set_request_handler(s->ctx_, "/metrics$", &MetricsServer::handle, s.get());
  return s;
}

MetricsServer::~MetricsServer() {
  if (ctx_) mg_stop(ctx_);
}

int MetricsServer::handle(mg_connection* conn, void* self) {
  const mg_request_info* req = mg_get_request_info(conn);
  if (std::strcmp(req->request_method, "GET") != 0 && std::strcmp(req->request_method, "HEAD") != 0) {
    mg_printf(conn, "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Length: 0\r\n\r\n");
    return 405;
  }
  const std::string body = static_cast<MetricsServer*>(self)->render_();
  mg_printf(conn,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            "Content-Length: %zu\r\nConnection: close\r\n\r\n",
            body.size());
  if (std::strcmp(req->request_method, "GET") == 0) mg_write(conn, body.data(), body.size());
  return 200;
}

}  // namespace passgate::control
