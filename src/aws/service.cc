#include "aws/service.h"

namespace nimbus::aws {

void ServiceRegistry::Register(std::string service, std::string operation, OperationHandler handler,
                               ResourceResolver resource, bool anonymous) {
  Register(std::move(service), std::move(operation),
           Registration{std::move(handler), std::move(resource), anonymous, {}});
}

void ServiceRegistry::Register(std::string service, std::string operation,
                               Registration registration) {
  services_[std::move(service)][std::move(operation)] = std::move(registration);
}

const Registration* ServiceRegistry::Find(std::string_view service,
                                          std::string_view operation) const {
  auto s = services_.find(service);
  if (s == services_.end()) return nullptr;
  auto o = s->second.find(operation);
  return o == s->second.end() ? nullptr : &o->second;
}

bool ServiceRegistry::HasService(std::string_view service) const {
  return services_.find(service) != services_.end();
}

}  // namespace nimbus::aws
