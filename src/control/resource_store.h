// ResourceStore: the one generic implementation of the resources that AWS ML services
// manage (ARCHITECTURE.md §3): Create/Describe/List/Update/Delete, state transitions,
// ClientToken idempotency, NextToken pagination and tags, over store::Database.
//
// A Resource is a document: identity (service, kind, name, ARN, account, region), a
// status with its history, a body (a Value the owning service shapes and reads), ordered
// tags and timestamps. Names are unique per (kind, account, region); ARNs are unique
// everywhere. Each kind is described by a ResourceKind (resource_kind.h), which also
// supplies the exact AWS errors; every method returns those errors as Status::Aws.
//
// Services pass their ResourceKind to each call. Operations that start from an ARN alone
// (tags, GetByArn) find the kind among those given to RegisterKind(), so a service
// registers its kinds at start-up.
//
// Consistency: every write is one database transaction that reads the current row,
// checks it and writes it back, so concurrent writers never lose an update and exactly
// one of several concurrent Creates of a name wins. `version` counts the writes of a
// resource (1 after Create); a mutator that wants optimistic concurrency across requests
// compares it and fails. Reads see the last committed state.
//
// Pagination is keyset pagination: a NextToken holds the sort key and the row id of the
// last item returned (never an offset), authenticated by an HMAC under a random key kept
// in the database (pagination.h), and bound to the query. An item that exists when the
// first page is read and is not changed meanwhile appears exactly once across the pages,
// however many resources are created between pages.
//
// The schema (migrations of component "control/resources") is documented in
// metadata_schema.md beside this file.
//
// Thread-safety: every method may be called from any thread at once. RegisterKind() is
// meant for start-up; a registered kind must not be re-registered while requests run.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "control/pagination.h"
#include "control/resource_kind.h"
#include "core/clock.h"
#include "core/result.h"
#include "core/value.h"
#include "store/database.h"

namespace nimbus::control {

inline constexpr size_t kMaxTagsPerResource = 50;
inline constexpr size_t kMaxTagKeyLength = 128;    // Unicode characters
inline constexpr size_t kMaxTagValueLength = 256;  // Unicode characters

struct Tag {
  std::string key;
  std::string value;
  bool operator==(const Tag&) const = default;
};
// In the order the keys were first added; a key appears at most once.
using Tags = std::vector<Tag>;

// One entry of a resource's status history; every transition appends one.
struct StatusTransition {
  std::string status;
  std::string secondary_status;
  std::string message;  // why (StatusMessage / the failure reason)
  double at = 0;        // epoch seconds
  bool operator==(const StatusTransition&) const = default;
};

struct Resource {
  std::string service;
  std::string kind;
  std::string name;
  std::string arn;
  std::string account;
  std::string region;
  std::string status;
  std::string secondary_status;
  std::vector<StatusTransition> history;  // oldest first; starts with the initial status
  std::string failure_reason;
  Value body;  // the service's document
  Tags tags;
  double created_at = 0;   // epoch seconds
  double modified_at = 0;  // epoch seconds; every write sets it
  int64_t version = 0;     // 1 after Create, +1 per write
  std::string client_token;
};

enum class SortBy { kCreationTime, kName, kStatus };
enum class SortOrder { kAscending, kDescending };

struct ListQuery {
  std::string name_contains;                   // case-insensitive substring of the name; empty: any
  std::optional<double> creation_time_after;   // strictly after
  std::optional<double> creation_time_before;  // strictly before
  std::optional<double> last_modified_time_after;
  std::optional<double> last_modified_time_before;
  std::string status_equals;  // empty: any
  SortBy sort_by = SortBy::kCreationTime;
  SortOrder sort_order = SortOrder::kDescending;
  std::optional<int> max_results;  // absent: the kind's default; else 1..kind.max_max_results
  std::string next_token;          // empty: the first page
};

struct ListPage {
  std::vector<Resource> items;
  std::string next_token;  // empty on the last page
};

struct TagPage {
  Tags tags;
  std::string next_token;  // empty on the last page
};

// What Transition() does to the status.
struct StatusChange {
  std::string status;            // the new status
  std::string secondary_status;  // the new secondary status (empty: none)
  std::string message;           // recorded in the history entry
  // When set, replaces Resource::failure_reason (set it with a Failed status).
  std::optional<std::string> failure_reason;
};

struct ResourceStoreOptions {
  const Clock* clock = &SystemClock::Instance();
};

class ResourceStore {
 public:
  // Changes a resource inside the write transaction; an error aborts the write and is
  // returned as is. It may change body, failure_reason and tags, nothing else.
  using Mutator = std::function<Status(Resource&)>;
  // Inspects a resource inside the write transaction; an error aborts the operation.
  using Check = std::function<Status(const Resource&)>;

  // Registers the "control/resources" migrations, runs db.Migrate(), and loads (creating
  // on first start) the pagination key. db must outlive the store.
  static Result<std::unique_ptr<ResourceStore>> Open(store::Database& db,
                                                     ResourceStoreOptions options = {});

  // Makes the kind known to the ARN-based operations (tags, GetByArn). A later
  // registration of the same (service, kind) replaces it.
  void RegisterKind(const ResourceKind& kind);
  // nullptr when not registered.
  const ResourceKind* FindKind(std::string_view service, std::string_view kind) const;
  // The registered kind whose ARN namespace and resource type the ARN has, or nullptr.
  const ResourceKind* FindKindByArn(std::string_view arn) const;

  // Creates a resource in the kind's initial status. A name in use is the kind's in_use
  // error. With a client_token: a resource created earlier with the same token and the
  // same request (name, body, tags) is returned as it is now, without a write (*created
  // is then false); the same token with another request is idempotency_mismatch.
  Result<Resource> Create(const ResourceKind& kind, std::string_view account,
                          std::string_view region, std::string_view name, Value body,
                          Tags tags = {}, std::string_view client_token = {},
                          bool* created = nullptr);

  Result<Resource> Get(const ResourceKind& kind, std::string_view account, std::string_view region,
                       std::string_view name);
  // By ARN, for a resource of this kind; another kind's ARN is not found.
  Result<Resource> GetByArn(const ResourceKind& kind, std::string_view arn);
  // By ARN, for any kind; errors use the wording of the kind the ARN names.
  Result<Resource> GetByArn(std::string_view arn);

  // Read-modify-write in one transaction: bumps version and sets modified_at.
  Result<Resource> Update(const ResourceKind& kind, std::string_view account,
                          std::string_view region, std::string_view name, const Mutator& fn);

  // Moves the resource to change.status, checked against the kind's state machine (an
  // illegal move is the kind's invalid_transition error, naming the current status),
  // appends the history entry, and applies `also` (may be null) in the same
  // transaction, e.g. to record output locations together with Completed (`also` sees
  // the resource in its new status). Repeating the
  // current status, secondary status and failure reason is a no-op that returns the
  // resource unchanged (so that a restarted controller may replay its last step).
  Result<Resource> Transition(const ResourceKind& kind, std::string_view account,
                              std::string_view region, std::string_view name,
                              const StatusChange& change, const Mutator& also = nullptr);

  // Deletes the resource and its tags; `check` (may be null) may refuse first, e.g.
  // while the resource is still in progress.
  Status Delete(const ResourceKind& kind, std::string_view account, std::string_view region,
                std::string_view name, const Check& check = nullptr);

  // One page of the kind's resources in (account, region).
  Result<ListPage> List(const ResourceKind& kind, std::string_view account, std::string_view region,
                        const ListQuery& query);

  // Every resource of the kind, in every account and region, whose status is not
  // terminal, oldest first: what controllers reconcile at start-up.
  Result<std::vector<Resource>> ListNonTerminal(const ResourceKind& kind);

  // Tags by ARN, for resources of any registered kind. caller_account, when not empty,
  // must own the resource (another account's resource is not found). AddTags overwrites
  // the values of keys already present (keeping their position) and returns the
  // resource's tags afterwards.
  Result<Tags> AddTags(std::string_view arn, const Tags& tags,
                       std::string_view caller_account = {});
  // Removes the keys present; absent keys are ignored, as on AWS.
  Status RemoveTags(std::string_view arn, const std::vector<std::string>& keys,
                    std::string_view caller_account = {});
  // max_results 0: all (at most kMaxTagsPerResource fit anyway).
  Result<TagPage> ListTags(std::string_view arn, int max_results, std::string_view next_token,
                           std::string_view caller_account = {});

  // The AWS tag rules, with the kind's wording: at most kMaxTagsPerResource tags, keys of
  // 1..128 and values of 0..256 characters from letters, digits, spaces and _.:/=+-@,
  // no key starting with "aws:", no key twice.
  static Status ValidateTags(const ResourceKind& kind, const Tags& tags);

 private:
  ResourceStore(store::Database& db, ResourceStoreOptions options, std::string token_key)
      : db_(db), options_(options), tokens_(std::move(token_key)) {}

  double Now() const { return options_.clock->Now(); }
  // The kind for a row's (service, kind); a neutral default when unregistered.
  const ResourceKind& KindOf(std::string_view service, std::string_view kind) const;
  // The not-found error for an ARN, in the wording of the kind the ARN names.
  Status NotFoundByArn(std::string_view arn) const;

  store::Database& db_;
  const ResourceStoreOptions options_;
  const PageTokenCodec tokens_;

  mutable std::mutex kinds_mu_;
  // Owned here so that pointers handed out stay valid; replaced in place.
  std::map<std::pair<std::string, std::string>, std::unique_ptr<ResourceKind>> kinds_;
  ResourceKind default_kind_;
};

// Reads the SageMaker-style List* members into a ListQuery: NameContains,
// CreationTimeAfter/Before, LastModifiedTimeAfter/Before, StatusEquals, SortBy
// (Name | CreationTime | Status), SortOrder (Ascending | Descending), MaxResults,
// NextToken. An unknown SortBy or SortOrder is the kind's validation error.
Result<ListQuery> ListQueryFromInput(const ResourceKind& kind, const Value& input);

}  // namespace nimbus::control
